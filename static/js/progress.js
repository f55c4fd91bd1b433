/* Live progress of one run over its WebSocket.
 *
 * The page is rendered from the row; this script then follows the socket
 * /ws/progress/update_run/<id>/. On every (re)connect the server sends a
 * snapshot (the whole current state and retained log), then each update as
 * the worker publishes it, so a reload or a dropped socket catches up by
 * itself. A socket closed as not allowed (44xx) is not retried.
 */
(function () {
  "use strict";

  var LABELS = {
    scheduled: "Scheduled", running: "Running", succeeded: "Succeeded",
    rolling_back: "Rolling back", rolled_back: "Rolled back",
    failed: "Failed", cancelled: "Cancelled", waiting: "Needs your input"
  };
  var BADGES = {
    scheduled: "info", running: "info", rolling_back: "warn", succeeded: "ok",
    rolled_back: "warn", failed: "err", cancelled: "", waiting: "warn"
  };
  var TERMINAL = { succeeded: 1, rolled_back: 1, failed: 1, cancelled: 1 };
  var REFUSED = {
    4401: "You are logged out. Log in again to follow this run.",
    4403: "Your account may not follow this run.",
    4404: "This run no longer exists."
  };

  var root = document.getElementById("run-live");
  if (!root || !window.WebSocket) return;
  var $ = function (id) { return document.getElementById(id); };
  var conn = $("run-conn");
  var logEl = $("run-log");
  var steps = $("run-steps");
  var lastAt = 0;
  var lastStep = null;
  var socket = null;
  var retries = 0;
  var finished = false;
  var labels = {};
  try { labels = JSON.parse(document.getElementById("step-labels").textContent); } catch (e) { /* names then */ }

  function setConn(text, cls) {
    conn.textContent = text;
    conn.className = "conn " + (cls || "");
  }

  // Started and Finished as the page writes them: "Mon 30 Nov 2026, 22:00 GMT".
  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    var options = {
      weekday: "short", day: "2-digit", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
    };
    var zone = root.getAttribute("data-zone");
    if (zone) options.timeZone = zone;
    try { return d.toLocaleString("en-GB", options).replace(/^(\w{3}),/, "$1"); } catch (e) { return d.toISOString(); }
  }

  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    var options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
    var zone = root.getAttribute("data-zone");
    if (zone) options.timeZone = zone; // the school's clock, like the rest of the page
    try { return d.toLocaleTimeString("en-GB", options); } catch (e) { return d.toISOString().slice(11, 19); }
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + (seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function eta(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return "about " + seconds + " s left";
    return "about " + Math.round(seconds / 60) + " min left";
  }

  function stepItem(name) {
    var item = steps.querySelector('[data-step="' + name + '"]');
    if (item || !name) return item;
    item = document.createElement("li");
    item.setAttribute("data-step", name);
    item.innerHTML = '<span class="step-icon" aria-hidden="true"></span> <span class="step-label"></span> ' +
      '<span class="step-state sr-only"></span> <span class="step-time muted"></span>';
    item.querySelector(".step-label").textContent = labels[name] || name.replace(/_/g, " ");
    steps.appendChild(item);
    return item;
  }

  function setStep(item, state, at) {
    item.setAttribute("data-state", state);
    item.className = "step step-" + state;
    item.querySelector(".step-state").textContent = state;
    if (at && state === "running" && !item.querySelector(".step-time").textContent) {
      item.querySelector(".step-time").textContent = clock(at);
    }
  }

  function isRollbackStep(li) {
    return (li.getAttribute("data-step") || "").indexOf("rollback") === 0;
  }

  function applySteps(p) {
    var current = stepItem(p.step);
    var items = Array.prototype.slice.call(steps.querySelectorAll("li"));
    var index = current ? items.indexOf(current) : -1;
    var undoing = p.state === "rolling_back" || p.state === "rolled_back" || p.state === "failed";
    items.forEach(function (li, i) {
      var was = li.getAttribute("data-state");
      if (p.state === "succeeded") {
        if (was !== "skipped") setStep(li, "done");
      } else if (undoing && was === "running" && !isRollbackStep(li) && li !== current) {
        setStep(li, "failed"); // the update step that was running when it failed
      } else if (i < index && (was === "running" || was === "pending") &&
                 isRollbackStep(li) === isRollbackStep(current)) {
        setStep(li, "done");
      } else if (TERMINAL[p.state] && was === "pending") {
        setStep(li, "skipped");
      }
    });
    if (current) {
      if (p.state === "running") {
        setStep(current, "running", p.at);
      } else if (undoing && isRollbackStep(current)) {
        var map = { rolling_back: "running", rolled_back: "done", failed: "failed" };
        setStep(current, map[p.state], p.at);
      } else if (undoing && current.getAttribute("data-state") !== "done") {
        setStep(current, "failed");
      }
    }
    if (lastStep && lastStep !== p.step && p.event === "update") {
      var prev = stepItem(lastStep);
      var time = prev && prev.querySelector(".step-time");
      if (time && time.textContent && time.textContent.indexOf("→") < 0) time.textContent += " → " + clock(p.at);
    }
    lastStep = p.step;
  }

  function apply(p) {
    var at = Date.parse(p.at) || 0;
    root.setAttribute("data-state", p.state);
    var badge = $("run-state");
    badge.textContent = LABELS[p.state] || p.state;
    badge.className = "badge big-badge " + (BADGES[p.state] || "");
    $("run-message").textContent = p.message;
    var bar = $("run-progress");
    bar.setAttribute("aria-valuenow", p.percent);
    bar.querySelector(".bar").style.width = p.percent + "%";
    $("run-percent").textContent = p.percent + "%";
    $("run-eta").textContent = TERMINAL[p.state] ? "" : eta(p.eta_seconds);
    $("run-rollback").hidden = !(p.state === "rolling_back" || p.state === "rolled_back");
    $("run-rollback-doing").hidden = p.state !== "rolling_back";
    $("run-rollback-done").hidden = p.state !== "rolled_back";
    $("run-failed").hidden = p.state !== "failed";
    $("run-done").hidden = p.state !== "succeeded";
    $("run-waiting").hidden = p.state !== "waiting";
    var cancel = $("run-cancel");
    if (cancel) cancel.hidden = p.state !== "scheduled"; // only a run not yet started
    var startNow = $("run-start-now");
    if (startNow) startNow.hidden = p.state !== "scheduled";
    if (p.state === "succeeded" && root.getAttribute("data-kind") === "update") {
      // The banner offering the version just installed is no longer true.
      document.querySelectorAll('[data-testid="update-banner"]').forEach(function (banner) {
        if (banner.getAttribute("data-version") === root.getAttribute("data-to")) banner.remove();
      });
    }
    if (p.state === "waiting") $("run-waiting-text").textContent = p.message;
    if (p.state === "failed" && $("run-error") && !$("run-error").textContent) {
      $("run-error").textContent = p.message;
    }
    if (p.event === "snapshot") {
      logEl.textContent = p.log;
    } else if (at >= lastAt) {
      logEl.textContent += p.log; // older than the snapshot: already in it
    }
    lastAt = Math.max(lastAt, at);
    logEl.scrollTop = logEl.scrollHeight;
    applySteps(p);
    var startedEl = $("run-started");
    if (!startedEl.getAttribute("data-at") && p.state === "running" && at) {
      startedEl.setAttribute("data-at", p.at); // the worker just took the run
      startedEl.textContent = when(p.at);
    }
    var started = Date.parse(startedEl.getAttribute("data-at") || "");
    if (!isNaN(started) && at) {
      $("run-duration").textContent = duration((at - started) / 1000);
    }
    if (TERMINAL[p.state]) {
      if (at) $("run-finished").textContent = when(p.at);
      finished = true;
      setConn("Finished — " + (LABELS[p.state] || p.state).toLowerCase(), "done");
      if (socket) socket.close(1000);
    }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.getAttribute("data-socket"));
    socket.onopen = function () { retries = 0; setConn("Live", "live"); };
    socket.onmessage = function (event) {
      try { apply(JSON.parse(event.data)); } catch (e) { /* a bad frame is skipped */ }
    };
    socket.onclose = function (event) {
      if (finished) return;
      if (REFUSED[event.code]) { setConn(REFUSED[event.code], "error"); return; }
      retries += 1;
      // How often this page lost its socket: tests read it to prove none.
      root.setAttribute("data-drops", String(Number(root.getAttribute("data-drops") || 0) + 1));
      var wait = Math.min(15, Math.pow(2, Math.min(retries, 4) - 1));
      setConn("Connection lost — reconnecting in " + wait + " s…", "warn");
      window.setTimeout(connect, wait * 1000);
    };
  }

  var initial = document.getElementById("run-snapshot");
  if (initial) {
    try { var snap = JSON.parse(initial.textContent); lastAt = Date.parse(snap.at) || 0; lastStep = snap.step; } catch (e) { /* ignore */ }
  }
  if (TERMINAL[root.getAttribute("data-state")]) {
    setConn("Finished", "done");
    return;
  }
  connect();
})();

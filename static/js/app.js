/* CLMS Updates: small page helpers, no framework.
 * - forms with data-busy show a loading state (and ask data-confirm first);
 * - elements with data-load fill themselves from a fragment URL;
 * - .countdown[data-deadline] counts down to a deadline;
 * - the schedule dialog shows the date/time fields only when they are needed;
 * - table cells carry their column's name, for the stacked rows on a phone.
 */
(function () {
  "use strict";

  function remaining(ms) {
    if (ms <= 0) return "deadline passed";
    var minutes = Math.floor(ms / 60000);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var mins = minutes % 60;
    if (days > 0) return days + " d " + hours + " h left";
    if (hours > 0) return hours + " h " + mins + " min left";
    if (minutes > 0) return mins + " min left";
    return Math.ceil(ms / 1000) + " s left";
  }

  function tickCountdowns() {
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-deadline"));
      if (!isNaN(at)) el.textContent = remaining(at - Date.now());
    });
  }

  function busy(form) {
    form.addEventListener("submit", function (event) {
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        return;
      }
      var button = form.querySelector("button[type=submit], button:not([type])");
      if (!button) return;
      if (button.getAttribute("aria-busy") === "true") {
        event.preventDefault(); // a second click must not send it twice
        return;
      }
      button.setAttribute("data-label", button.textContent);
      button.setAttribute("aria-busy", "true");
      button.textContent = form.getAttribute("data-busy");
    });
  }

  function resetBusy() {
    document.querySelectorAll("button[aria-busy=true]").forEach(function (button) {
      button.removeAttribute("aria-busy");
      if (button.hasAttribute("data-label")) button.textContent = button.getAttribute("data-label");
    });
  }

  function load(el) {
    var url = el.getAttribute("data-load");
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("the server answered " + response.status);
        return response.text();
      })
      .then(function (html) { el.innerHTML = html; })
      .catch(function (error) {
        el.innerHTML = "";
        var p = document.createElement("p");
        p.className = "field-error";
        p.textContent = "Could not load this part (" + error.message + "). Reload the page to try again.";
        el.appendChild(p);
      });
  }

  function whenToggle(form) {
    var radios = form.querySelectorAll("input[name=when]");
    var fields = form.querySelector("[data-when=at]");
    if (!radios.length || !fields) return;
    function sync() {
      var chosen = form.querySelector("input[name=when]:checked");
      var show = chosen && chosen.value === "at";
      fields.hidden = !show;
      fields.querySelectorAll("input").forEach(function (input) { input.required = !!show; });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", sync); });
    sync();
  }

  // Once a field marked with an error is changed, its old message goes.
  function clearErrorsOnInput(form) {
    form.addEventListener("input", function (event) {
      var holder = event.target.closest(".row > div, label") || event.target;
      var next = holder.nextElementSibling;
      holder.querySelectorAll(".field-error").forEach(function (el) { el.hidden = true; });
      while (next && next.classList.contains("field-error")) { next.hidden = true; next = next.nextElementSibling; }
    });
  }

  // On a phone a table's rows stack as cards (app.css); each cell is labelled
  // with its column's header so the card still reads "Verify: …".
  function labelCells(table) {
    var heads = Array.prototype.map.call(
      table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); }
    );
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, i) {
        if (heads[i] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[i]);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("main table").forEach(labelCells);
    document.querySelectorAll("form").forEach(clearErrorsOnInput);
    document.querySelectorAll("form[data-busy]").forEach(busy);
    document.querySelectorAll("[data-load]").forEach(load);
    document.querySelectorAll("form").forEach(whenToggle);
    tickCountdowns();
    window.setInterval(tickCountdowns, 1000);
  });
  // Coming back with the Back button must not leave buttons stuck as busy.
  window.addEventListener("pageshow", resetBusy);
})();

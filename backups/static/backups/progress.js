// Follow busy backups live: each row with data-progress opens the job's socket,
// shows its latest message, and reloads the page once the job settles. A row
// with data-until (a restore, whose backup stays "verified" throughout) reloads
// once a message reaches one of those steps instead.
(function () {
  "use strict";
  var settled = ["created", "verified", "failed"];
  document.querySelectorAll("[data-progress]").forEach(function (row) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + row.dataset.progress);
    var status = row.querySelector("[data-role=message]");
    var until = (row.dataset.until || "").split(" ").filter(Boolean);
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (status && data.message) {
        status.textContent = data.message + (data.percent ? " (" + data.percent + "%)" : "");
      }
      var done = until.length
        ? data.event === "update" && until.indexOf(data.step) !== -1
        : data.event === "update" && settled.indexOf(data.state) !== -1;
      if (done) {
        socket.close();
        window.location.reload();
      }
    };
  });
})();

// Follow busy backups live: each row with data-progress opens the job's socket,
// shows its latest message, and reloads the page once the job settles.
(function () {
  "use strict";
  var settled = ["created", "verified", "failed"];
  document.querySelectorAll("[data-progress]").forEach(function (row) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + row.dataset.progress);
    var status = row.querySelector("[data-role=message]");
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (status) {
        status.textContent = data.message + (data.percent ? " (" + data.percent + "%)" : "");
      }
      if (data.event === "update" && settled.indexOf(data.state) !== -1) {
        socket.close();
        window.location.reload();
      }
    };
  });
})();

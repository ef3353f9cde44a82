// The console's one script: a job's page follows its job. The server sends an event when the
// job's state, progress or log changes (server-sent events); this puts each into the page.
// Without it the page shows the job as it was when loaded, and reloading shows the rest.
"use strict";
(function () {
  var box = document.querySelector("[data-events]");
  if (!box || !window.EventSource) {
    return;
  }
  var source = new EventSource(box.getAttribute("data-events"));
  var set = function (id, text) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = text;
    }
  };
  source.addEventListener("job", function (message) {
    var job = JSON.parse(message.data);
    var state = document.getElementById("job-state");
    state.textContent = job.state;
    state.className = job.class;
    set("job-done", job.done);
    set("job-started", job.started || "");
    set("job-ended", job.ended || "");
    var bar = document.getElementById("job-progress");
    if (job.bytes_total) {
      bar.max = Math.max(job.bytes_total, 1);
      bar.value = job.bytes_done;
    }
    var log = document.getElementById("job-log");
    job.log.forEach(function (line) {
      var row = document.createElement("tr");
      line.forEach(function (text) {
        var cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      log.appendChild(row);
    });
    if (job.error) {
      set("job-error", job.error);
      document.getElementById("job-failed").hidden = false;
    }
    if (job.last) {
      var cancel = document.getElementById("job-cancel");
      if (cancel) {
        cancel.hidden = true;
      }
      source.close();
      box.setAttribute("data-ended", "");
    }
  });
})();

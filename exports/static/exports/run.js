// Keeps the run page's status line in step with the bar. When the run reaches another final state
// than the one the page was drawn with, reload once so the page shows its buttons; the status comes
// from the run's own row, so the reloaded page agrees with it and never reloads again.
document.addEventListener("soil:status", function (event) {
  var s = event.detail, line = document.getElementById("run-status-line");
  if (!line || !s.run_status) return;
  document.getElementById("run-status").textContent = s.run_status_display;
  var cancel = document.getElementById("cancel-form");
  if (cancel && s.cancel_requested) cancel.hidden = true;
  var finished = s.run_status !== "queued" && s.run_status !== "running";
  if (finished && s.run_status !== line.dataset.runStatus) {
    line.dataset.runStatus = s.run_status;
    window.location.reload();
  }
});

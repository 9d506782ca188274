// Once a cancel was asked for, the Cancel button is disabled and "Cancelling…" shown, whoever asked.
function cancelRequested() {
  var button = document.getElementById("cancel-run"), note = document.getElementById("cancelling");
  if (button) button.disabled = true;
  if (note) note.hidden = false;
}
document.addEventListener("submit", function (event) {
  if (event.target.id === "cancel-form") window.setTimeout(cancelRequested, 0);  // after the form is sent
});

// Keeps the run page's status line in step with the bar. When the run reaches another final state
// than the one the page was drawn with, reload once so the page shows its buttons; the status comes
// from the run's own row, so the reloaded page agrees with it and never reloads again.
document.addEventListener("soil:status", function (event) {
  var s = event.detail, line = document.getElementById("run-status-line");
  if (!line || !s.run_status) return;
  document.getElementById("run-status").textContent = s.run_status_display;
  if (s.cancel_requested) cancelRequested();
  line.classList.toggle("run-failed", s.run_status === "failed");
  line.classList.toggle("run-cancelled", s.run_status === "cancelled");
  if (s.run_status === "cancelled") {  // soil calls it failed; it is its own state, in its own words and colour
    var widget = event.target;
    widget.classList.remove("soil-failed");
    widget.classList.add("run-cancelled-bar");
    widget.querySelector(".soil-state").textContent = line.dataset.cancelledText;
  }
  var finished = s.run_status !== "queued" && s.run_status !== "running";
  if (finished && s.run_status !== line.dataset.runStatus) {
    line.dataset.runStatus = s.run_status;
    window.location.reload();
  }
});

// Push updates: the bar follows the run's event stream (server-sent events) instead of polling.
// soil.js polls only as a fallback: when the browser has no EventSource, or the stream fails
// (refused, or three errors without an event in between). "?polling=off" disables the fallback.
(function () {
  var line = document.getElementById("run-status-line");
  var widget = document.querySelector(".soil-progress[data-soil-status-url]");
  if (!line || !widget || !line.dataset.eventsUrl || !window.EventSource) return;
  var pollUrl = widget.dataset.soilStatusUrl, errors = 0, source = null;
  var polling = new URLSearchParams(window.location.search).get("polling") !== "off";
  widget.removeAttribute("data-soil-status-url");  // soil.js (deferred) leaves this widget to us
  widget.dataset.updates = "events";

  function fallBack() {
    source.close();
    if (!polling || !window.soil) return;
    widget.dataset.updates = "polling";
    widget.dataset.soilStatusUrl = pollUrl;
    window.soil.watch(widget);
  }

  document.addEventListener("DOMContentLoaded", function () {
    source = new EventSource(line.dataset.eventsUrl);
    source.addEventListener("status", function (event) {
      errors = 0;
      var s = JSON.parse(event.data);
      if (window.soil) window.soil.render(widget, s);
      if (s.run_status !== "queued" && s.run_status !== "running") source.close();
    });
    source.addEventListener("gone", function () { source.close(); });
    source.onopen = function () { errors = 0; };
    source.onerror = function () {
      // After a stream ends the browser reconnects by itself (CONNECTING); CLOSED means it gave up.
      errors += 1;
      if (source.readyState === EventSource.CLOSED || errors >= 3) fallBack();
    };
  });
})();

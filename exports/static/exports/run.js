// When the export finishes or fails, reload: the page then shows the run's final state from the server.
document.addEventListener("soil:status", function (event) {
  var state = event.detail.state;
  if (state === "success" || state === "failed") window.location.reload();
});

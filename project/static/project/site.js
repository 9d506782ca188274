// A form that came back with errors (or a warning): the summary above it takes the focus (and so comes
// into view), so that a screen reader reads it and a person sees it without scrolling.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) summary.focus();
});

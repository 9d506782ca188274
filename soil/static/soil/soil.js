// Polls a soil status URL and updates the progress widget; stops on success or failure.
(function () {
  "use strict";
  var FAST = 1000, SLOW = 10000;

  // The words are the page's, in its language (progress.html's data-soil-text-*); English when missing.
  var ENGLISH = {
    success: "Ready.", failed: "Failed.", started: "Working\u2026", notStarted: "Waiting for a worker\u2026",
    waiting: "Waiting\u2026", unavailable: "This download is not available.",
    etaSeconds: "about {seconds} s left", etaMinutes: "about {minutes} min left"
  };

  function text(widget, name) {
    var key = "soilText" + name.charAt(0).toUpperCase() + name.slice(1);
    return widget.dataset[key] || ENGLISH[name];
  }

  function formatEta(widget, seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return text(widget, "etaSeconds").replace("{seconds}", seconds);
    return text(widget, "etaMinutes").replace("{minutes}", Math.round(seconds / 60));
  }

  function render(widget, s) {
    var failed = s.state === "failed";
    widget.dataset.state = s.state;
    widget.classList.toggle("soil-failed", failed);
    var bar = widget.querySelector(".soil-bar");
    // A failed task reports no percentage: the bar stays where the task got to, in red, not back at 0%.
    var shown = parseInt(bar.getAttribute("aria-valuenow"), 10) || 0;
    var percent = failed ? Math.max(shown, s.percent || 0) : s.percent;
    bar.setAttribute("aria-valuenow", percent);
    widget.querySelector(".soil-bar-fill").style.width = percent + "%";
    widget.querySelector(".soil-percent").textContent = percent + "%";
    // The error is shown once, in the error list; a failed task's message only repeats it.
    widget.querySelector(".soil-message").textContent = failed ? "" : (s.message || "");
    widget.querySelector(".soil-eta").textContent = s.state === "started" ? formatEta(widget, s.eta_seconds) : "";
    var words = {success: "success", failed: "failed", started: "started", not_started: "notStarted"};
    widget.querySelector(".soil-state").textContent = text(widget, words[s.state] || "waiting");
    var errors = widget.querySelector(".soil-errors");
    errors.textContent = "";
    (s.errors || []).forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      errors.appendChild(item);
    });
    var finished = s.state === "success" || s.state === "failed";
    widget.querySelector(".soil-alive-warning").hidden = finished || s.is_alive !== false;
    var link = widget.querySelector(".soil-download");
    if (s.is_ready && s.has_file && s.download_url) {
      link.href = s.download_url;
      link.hidden = false;
    }
    widget.dispatchEvent(new CustomEvent("soil:status", {detail: s, bubbles: true}));
  }

  function watch(widget) {
    var url = widget.dataset.soilStatusUrl, delay = FAST, lastPercent = null;
    function again() { window.setTimeout(tick, delay); }
    function tick() {
      fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (response.status === 403 || response.status === 404) {
            widget.querySelector(".soil-state").textContent = text(widget, "unavailable");
            return null;
          }
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (s) {
          if (!s) return;
          render(widget, s);
          if (s.state === "success" || s.state === "failed") return;
          // Back off while nothing moves; poll quickly again as soon as it does.
          delay = s.percent !== lastPercent ? FAST : Math.min(delay * 1.5, SLOW);
          lastPercent = s.percent;
          again();
        })
        .catch(function () { delay = Math.min(delay * 2, SLOW); again(); });
    }
    tick();
  }

  // For pages that feed the widget themselves (e.g. from server-sent events) and poll only as a fallback.
  window.soil = {render: render, watch: watch};
  document.querySelectorAll("[data-soil-status-url]").forEach(watch);
})();

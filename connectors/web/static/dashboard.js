// Operations dashboard: follows /dashboard/events and swaps in the re-rendered live region.
// The pages work without this script; it only keeps them current.
"use strict";

(function () {
  const live = document.getElementById("live");
  const updated = document.getElementById("updated");
  if (!live || !live.dataset.events || typeof EventSource === "undefined") {
    return;
  }
  const source = new EventSource(live.dataset.events);
  source.addEventListener("update", function (event) {
    const update = JSON.parse(event.data);
    if (live.innerHTML !== update.live) {
      // Keep keyboard focus on the same link when the region is redrawn.
      const focused = document.activeElement && live.contains(document.activeElement)
        ? document.activeElement.getAttribute("href")
        : null;
      live.innerHTML = update.live;
      if (focused) {
        const again = live.querySelector('a[href="' + CSS.escape(focused) + '"]');
        if (again) {
          again.focus();
        }
      }
    }
    live.dataset.version = String(update.version);
    if (updated) {
      updated.textContent = updated.dataset.label + " " + new Date().toLocaleTimeString(
        document.documentElement.lang,
      );
    }
  });
})();

/* Works off a migration run batch by batch (POST .../step), updating the progress bar; reloads the
   page with the outcomes when the run is done. Closing the page pauses the run; reopening resumes it. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("migration-progress");
    if (!box || box.dataset.status === "done") return;
    var bar = document.getElementById("mig-bar");
    var text = document.getElementById("mig-text");
    var template = document.getElementById("mig-template").textContent;

    function show(s) {
      bar.max = s.total || 1;
      bar.value = s.done;
      text.textContent = template.replace("{d}", s.done).replace("{t}", s.total).replace("{m}", s.migrated)
        .replace("{b}", s.blocked).replace("{s}", s.skipped).replace("{f}", s.failed);
    }

    function next() {
      fetch(box.dataset.step, {
        method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": box.dataset.csrf }
      })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (s) {
          show(s);
          if (s.status === "done") { window.location.assign(box.dataset.reload); return; }
          next();
        })
        .catch(function (e) { text.textContent = text.textContent + " — " + e; });
    }
    next();
  });
})();

/* The case's process diagrams with bpmn-js (served from /static/vendor, no CDN): the current task
   highlighted, the completed path marked, waiting timers dashed. */
(function () {
  "use strict";
  var CURRENT = { READY: "gf-current", STARTED: "gf-active", ERROR: "gf-current" };

  function mark(viewer, states) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    Object.keys(states).forEach(function (id) {
      if (!registry.get(id)) return;
      var s = states[id];
      if (s === "COMPLETED") canvas.addMarker(id, "gf-done");
      else if (s === "WAITING") canvas.addMarker(id, "gf-waiting");
      else if (CURRENT[s]) canvas.addMarker(id, CURRENT[s]);
    });
    registry.filter(function (el) { return el.waypoints && el.source && el.target; }).forEach(function (flow) {
      var a = states[flow.source.id], b = states[flow.target.id];
      if (a === "COMPLETED" && b && b !== "WAITING" && b !== "FUTURE") canvas.addMarker(flow.id, "gf-done-flow");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("diagrams");
    if (!box) return;
    if (!window.BpmnJS) { box.textContent = box.dataset.msgMissing; return; }
    fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (doc) {
        return doc.diagrams.reduce(function (prev, d) {
          return prev.then(function () {
            var h = document.createElement("h3");
            h.textContent = d.name;
            var el = document.createElement("div");
            el.className = "diagram";
            el.setAttribute("role", "img");
            el.setAttribute("aria-label", d.name);
            el.dataset.process = d.process_id;
            box.appendChild(h);
            box.appendChild(el);
            var viewer = new window.BpmnJS({ container: el });
            return viewer.importXML(d.xml).then(function () {
              viewer.get("canvas").zoom("fit-viewport", "auto");
              mark(viewer, d.states);
              el.dataset.ready = "1";
            });
          });
        }, Promise.resolve());
      })
      .catch(function () { box.appendChild(document.createTextNode(box.dataset.msgFailed)); });
  });
})();

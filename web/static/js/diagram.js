/* The case's process diagram with bpmn-js (served from /static/vendor, no CDN): the current
   level's run of the level process, the current task highlighted, the completed path marked,
   waiting timers dashed. Drawn when its <details> is first opened, at a readable zoom centred
   on the current task; zoom buttons, wheel and drag to move. */
(function () {
  "use strict";
  var CURRENT = { READY: "gf-current", STARTED: "gf-active", ERROR: "gf-current" };
  var viewers = [];

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

  function readable(viewer, states) {
    var canvas = viewer.get("canvas");
    canvas.zoom("fit-viewport", "auto");
    if (canvas.zoom() >= 0.75) return;
    var registry = viewer.get("elementRegistry");
    var current = Object.keys(states).filter(function (id) { return CURRENT[states[id]] && registry.get(id); })[0];
    canvas.zoom(0.9);
    var el = current && registry.get(current);
    if (el) {
      var vb = canvas.viewbox();
      canvas.viewbox({ x: el.x + el.width / 2 - vb.width / 2, y: el.y + el.height / 2 - vb.height / 2,
                       width: vb.width, height: vb.height });
    }
  }

  function draw(box) {
    if (box.dataset.started) return;
    box.dataset.started = "1";
    if (!window.BpmnJS) { box.textContent = box.dataset.msgMissing; return; }
    var only = box.dataset.only;
    fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (doc) {
        var list = doc.diagrams;
        if (only && list.some(function (d) { return d.process_id === only; })) {
          list = list.filter(function (d) { return d.process_id === only; });
        }
        return list.reduce(function (prev, d) {
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
            viewers.push(viewer);
            return viewer.importXML(d.xml).then(function () {
              readable(viewer, d.states);
              mark(viewer, d.states);
              el.dataset.ready = "1";
            });
          });
        }, Promise.resolve());
      })
      .then(function () {
        var tools = document.querySelector(".diagram-tools");
        if (tools && viewers.length) tools.hidden = false;
      })
      .catch(function () { box.appendChild(document.createTextNode(box.dataset.msgFailed)); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("diagrams");
    if (!box) return;
    var details = box.closest("details");
    if (!details) { draw(box); return; }
    if (details.open) draw(box);
    details.addEventListener("toggle", function () { if (details.open) draw(box); });
    details.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-zoom]");
      if (!b) return;
      viewers.forEach(function (v) {
        var canvas = v.get("canvas");
        if (b.dataset.zoom === "fit") canvas.zoom("fit-viewport", "auto");
        else canvas.zoom(canvas.zoom() * (b.dataset.zoom === "in" ? 1.25 : 0.8));
      });
    });
  });
})();

/* Two versions of each BPMN file side by side (bpmn-js navigated viewer, served from /static/vendor),
   with added, removed and changed elements marked. */
(function () {
  "use strict";

  function viewer(container, xml, markers) {
    var v = new window.BpmnJS({ container: container });
    return v.importXML(xml).then(function () {
      var canvas = v.get("canvas");
      var registry = v.get("elementRegistry");
      canvas.zoom("fit-viewport", "auto");
      Object.keys(markers || {}).forEach(function (id) {
        if (registry.get(id)) canvas.addMarker(id, "gf-" + markers[id]);
      });
      container.dataset.ready = "1";
    });
  }

  function column(label, xml, markers, msgEmpty) {
    var col = document.createElement("div");
    var h = document.createElement("h4");
    h.textContent = label;
    col.appendChild(h);
    var box = document.createElement("div");
    box.className = "diagram";
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", label);
    col.appendChild(box);
    if (!xml) { box.textContent = msgEmpty; return { col: col, done: Promise.resolve() }; }
    return { col: col, done: viewer(box, xml, markers) };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("compare-diagrams");
    if (!root) return;
    if (!window.BpmnJS) { root.textContent = root.dataset.msgMissing; return; }
    fetch(root.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (doc) {
        return doc.diagrams.reduce(function (prev, d) {
          return prev.then(function () {
            var h = document.createElement("h3");
            h.textContent = d.file + (d.same ? " (" + root.dataset.msgSame + ")" : "");
            var pair = document.createElement("div");
            pair.className = "cmp-pair";
            pair.dataset.file = d.file;
            root.appendChild(h);
            root.appendChild(pair);
            var a = column(root.dataset.labelA + " · " + d.file, d.a, d.markers_a, "—");
            var b = column(root.dataset.labelB + " · " + d.file, d.b, d.markers_b, "—");
            pair.appendChild(a.col);
            pair.appendChild(b.col);
            return Promise.all([a.done, b.done]);
          });
        }, Promise.resolve());
      })
      .catch(function () { root.appendChild(document.createTextNode(root.dataset.msgFailed)); });
  });
})();

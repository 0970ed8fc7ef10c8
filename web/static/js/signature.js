/* Handwritten signature pads (widgets/signature.html) over signature_pad (vendor, served locally).
   Without JavaScript or a canvas the pad stays hidden and the typed name is the signature. The
   drawing goes to the server as a PNG data URL in <name>.png when the form is submitted; the
   server checks it (real PNG, size, dimensions, not blank) before storing it. */
(function () {
  "use strict";

  function setup(box) {
    var canvas = box.querySelector("canvas");
    var data = box.querySelector("[data-sig-data]");
    var status = box.querySelector(".sig-status");
    if (!canvas || !canvas.getContext || typeof window.SignaturePad !== "function") return;
    box.hidden = false;
    var pad = new window.SignaturePad(canvas, { minWidth: 0.8, maxWidth: 2.6, penColor: "#111",
                                                backgroundColor: "rgba(0,0,0,0)" });

    function resize() {
      var ratio = Math.max(window.devicePixelRatio || 1, 1);
      var strokes = pad.toData();
      var w = canvas.offsetWidth, h = canvas.offsetHeight;
      if (!w || !h) return;
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
      canvas.getContext("2d").scale(ratio, ratio);
      pad.clear();
      if (strokes.length) pad.fromData(strokes);
    }
    resize();
    if (data.value) {  // a drawing sent back with a refused form
      pad.fromDataURL(data.value, { width: canvas.offsetWidth, height: canvas.offsetHeight })
        .then(function () { box.classList.add("signed"); }, function () { data.value = ""; });
    }
    var last = canvas.offsetWidth;
    window.addEventListener("resize", function () {
      if (canvas.offsetWidth !== last) { last = canvas.offsetWidth; resize(); }
    });
    pad.addEventListener("endStroke", function () {
      box.classList.add("signed");
      if (status) status.textContent = box.dataset.msgSigned || "";
    });
    var clear = box.querySelector("[data-sig-clear]");
    if (clear) clear.addEventListener("click", function () {
      pad.clear();
      data.value = "";
      box.classList.remove("signed");
      if (status) status.textContent = box.dataset.msgCleared || "";
    });
    var form = box.closest("form");
    if (form) form.addEventListener("submit", function () {
      data.value = pad.isEmpty() ? "" : pad.toDataURL("image/png");
    }, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-signature]").forEach(setup);
  });
})();

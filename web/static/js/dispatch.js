/* The dispatch page: the case a 重复件 names is shown with its summary while the number is typed
   (tasks/<guid>/duplicate?case_no=..., a server-rendered fragment), and a repeat-dispute entry
   can be picked as the original. Without JavaScript the server shows the same summary after the
   first submit and waits for a second one to confirm. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-dup-preview]");
    if (!box || !window.fetch) return;
    var form = box.closest("form");
    var input = form.querySelector('[name="duplicate_of"]');
    var confirm = form.querySelector('[name="duplicate_confirm"]');
    if (!input || !confirm) return;
    var field = document.getElementById("f-duplicate_of-field");
    if (field) field.appendChild(box);  // under the number it shows
    var src = box.getAttribute("data-src");
    var timer = null, shown = null;

    function load() {
      var no = input.value.trim();
      if (no === shown) return;
      if (!no) { box.innerHTML = ""; confirm.value = ""; shown = no; return; }
      fetch(src + "?case_no=" + encodeURIComponent(no), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          if (input.value.trim() !== no) return;  // typed on meanwhile
          shown = no;
          box.innerHTML = html;
          confirm.value = box.querySelector(".dup-found") ? no : "";
        })
        .catch(function () { confirm.value = ""; });
    }

    input.addEventListener("input", function () {
      confirm.value = "";
      clearTimeout(timer);
      timer = setTimeout(load, 350);
    });
    input.addEventListener("change", load);
    if (input.value.trim() && !box.querySelector(".dup-found")) load();
    else if (box.querySelector(".dup-found")) shown = input.value.trim();

    document.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-dup-pick]");
      if (!b) return;
      ev.preventDefault();
      var radio = form.querySelector('input[name="action"][value="duplicate"]');
      if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
      input.value = b.getAttribute("data-dup-pick");
      load();
      input.scrollIntoView({ block: "center" });
      input.focus();
    });
  });
})();

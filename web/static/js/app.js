/* Gridflow staff app: small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  function valueOf(form, name) {
    var els = form.querySelectorAll('[name="' + name + '"]');
    if (!els.length) return "";
    var el = els[0];
    if (el.type === "radio") {
      for (var i = 0; i < els.length; i++) if (els[i].checked) return els[i].value;
      return "";
    }
    if (el.type === "checkbox" && els.length === 1) return el.checked ? "true" : "false";
    return el.value;
  }

  function refreshRequired(form) {
    form.querySelectorAll(".req[data-required-when]").forEach(function (mark) {
      var cond = JSON.parse(mark.getAttribute("data-required-when"));
      var on = Object.keys(cond).every(function (k) { return valueOf(form, k) === String(cond[k]); });
      mark.hidden = !on;
    });
  }

  // a field an if/then only asks for under a condition (report: 现场化解情况 when settled on the spot)
  function refreshShown(form) {
    form.querySelectorAll(".form-field[data-shown-when]").forEach(function (f) {
      var cond = JSON.parse(f.getAttribute("data-shown-when"));
      var on = Object.keys(cond).every(function (k) { return valueOf(form, k) === String(cond[k]); });
      var hasError = !!f.querySelector(".error-text");
      f.hidden = !on && !hasError;
    });
  }

  function once(form) {
    var sent = false;
    form.addEventListener("submit", function (ev) {
      if (sent) { ev.preventDefault(); return; }
      sent = true;
      form.querySelectorAll('button[type="submit"]').forEach(function (b) {
        b.setAttribute("aria-disabled", "true");
        if (b.dataset.busy) b.textContent = b.dataset.busy;
      });
    });
    window.addEventListener("pageshow", function () { sent = false; });
  }

  function addRow(button) {
    var set = button.closest("[data-rows]");
    var name = set.getAttribute("data-rows");
    var rows = set.querySelectorAll("[data-row]");
    var last = rows[rows.length - 1];
    var next = 0;
    rows.forEach(function (r) { next = Math.max(next, parseInt(r.getAttribute("data-row"), 10) + 1); });
    var copy = last.cloneNode(true);
    copy.setAttribute("data-row", String(next));
    var from = name + "." + last.getAttribute("data-row") + ".";
    var to = name + "." + next + ".";
    var idFrom = "f-" + from.replace(/\./g, "-"), idTo = "f-" + to.replace(/\./g, "-");
    copy.querySelectorAll("input, label").forEach(function (el) {
      if (el.name) el.name = el.name.replace(from, to);
      if (el.id) el.id = el.id.replace(idFrom, idTo);
      if (el.htmlFor) el.htmlFor = el.htmlFor.replace(idFrom, idTo);
      if (el.tagName === "INPUT") { el.value = ""; el.removeAttribute("aria-invalid"); }
    });
    copy.querySelectorAll(".error-text").forEach(function (e) { e.remove(); });
    copy.querySelectorAll(".invalid").forEach(function (e) { e.classList.remove("invalid"); });
    last.parentNode.insertBefore(copy, last.nextSibling);
    var first = copy.querySelector("input");
    if (first) first.focus();
  }

  function locate(button) {
    var name = button.getAttribute("data-geo");
    var status = document.getElementById("f-" + name.replace(/\./g, "-") + "-status");
    var lat = document.querySelector('[name="' + name + '.lat"]');
    var lng = document.querySelector('[name="' + name + '.lng"]');
    if (!navigator.geolocation) { status.textContent = button.dataset.msgFail; return; }
    status.textContent = button.dataset.msgWait;
    navigator.geolocation.getCurrentPosition(function (pos) {
      if (lat) lat.value = pos.coords.latitude.toFixed(6);
      if (lng) lng.value = pos.coords.longitude.toFixed(6);
      status.textContent = button.dataset.msgOk.replace("{m}", String(Math.round(pos.coords.accuracy || 0)));
    }, function () {
      status.textContent = button.dataset.msgFail;
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }

  function preview(input) {
    var list = document.getElementById(input.getAttribute("data-preview"));
    if (!list) return;
    list.innerHTML = "";
    Array.prototype.forEach.call(input.files || [], function (file) {
      var li = document.createElement("li");
      var chip = document.createElement("span");
      chip.className = "file-chip";
      if (/^image\/(jpeg|png|webp)$/.test(file.type)) {
        var img = document.createElement("img");
        img.alt = "";
        img.src = URL.createObjectURL(file);
        chip.appendChild(img);
      }
      var label = document.createElement("span");
      label.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KB)";
      chip.appendChild(label);
      li.appendChild(chip);
      list.appendChild(li);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-once]").forEach(once);
    document.querySelectorAll("form").forEach(function (form) {
      if (!form.querySelector(".req[data-required-when], .form-field[data-shown-when]")) return;
      refreshRequired(form);
      refreshShown(form);
      form.addEventListener("change", function () { refreshRequired(form); refreshShown(form); });
    });
    document.addEventListener("click", function (ev) {
      var t = ev.target.closest("[data-add-row], [data-geo]");
      if (!t) return;
      ev.preventDefault();
      if (t.hasAttribute("data-add-row")) addRow(t); else locate(t);
    });
    document.addEventListener("change", function (ev) {
      var t = ev.target;
      if (t.matches('input[type="file"][data-preview]')) preview(t);
      if (t.matches('.switch input[type="checkbox"]')) {
        var label = t.parentNode.querySelector("span[data-on]");
        if (label) label.textContent = t.checked ? label.dataset.on : label.dataset.off;
      }
    });
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();

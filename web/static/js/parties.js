/* The parties widget (widgets/parties.html): pick a registered resident with the registry's
   masked lookup (/registry/api/residents?q=...). A picked party fills a row's name and a hidden
   resident id (the server checks that it exists in the reporter's jurisdiction); typed rows stay
   possible for people who are not registered. Without JavaScript only typed rows exist. */
(function () {
  "use strict";

  function fmt(msg, key, value) { return (msg || "").replace("{" + key + "}", String(value)); }

  function setup(set) {
    var url = set.getAttribute("data-lookup");
    var box = set.querySelector(".party-search");
    if (!url || !box || !window.fetch) return;
    box.hidden = false;
    var q = box.querySelector("[data-party-q]");
    var results = box.querySelector(".party-results");
    var status = box.querySelector(".party-status");
    var timer = null, seq = 0;

    function emptyRow() {
      var rows = set.querySelectorAll("[data-row]");
      for (var i = 0; i < rows.length; i++) {
        var filled = Array.prototype.some.call(rows[i].querySelectorAll("input"), function (el) {
          return el.value.trim() !== "";
        });
        if (!filled) return rows[i];
      }
      set.querySelector("[data-add-row]").click();  // app.js copies the last row
      rows = set.querySelectorAll("[data-row]");
      return rows[rows.length - 1];
    }

    function link(row, who) {
      var linked = row.querySelector(".party-linked");
      var rid = row.querySelector("[data-party-rid]");
      if (!linked || !rid) return;
      rid.value = who ? String(who.resident_id) : "";
      linked.hidden = !who;
      linked.querySelectorAll(".error-text").forEach(function (e) { e.remove(); });
      linked.classList.remove("invalid");
      var label = linked.querySelector("[data-party-who]");
      if (label) label.textContent = who ? who.name + (who.address ? "（" + who.address + "）" : "") : "";
    }

    function pick(who) {
      var row = emptyRow();
      var name = row.querySelector('input[name$=".name"]');
      if (name) name.value = who.name;
      link(row, who);
      status.textContent = fmt(set.dataset.msgAdded, "name", who.name);
      results.innerHTML = "";
      q.value = "";
      if (name) name.focus();
    }

    function show(list) {
      results.innerHTML = "";
      list.forEach(function (who) {
        var li = document.createElement("li");
        var b = document.createElement("button");
        b.type = "button";
        b.className = "party-result";
        var strong = document.createElement("strong");
        strong.textContent = who.name;
        var small = document.createElement("span");
        small.className = "muted small";
        var bits = [who.sex === "F" ? set.dataset.msgF : (who.sex === "M" ? set.dataset.msgM : ""),
                    who.age != null ? fmt(set.dataset.msgAge, "n", who.age) : "",
                    who.id_number || "", who.phone || "", who.grid_name || "", who.address || ""];
        small.textContent = bits.filter(Boolean).join(" · ");
        b.appendChild(strong);
        b.appendChild(small);
        b.addEventListener("click", function () { pick(who); });
        li.appendChild(b);
        results.appendChild(li);
      });
    }

    function search() {
      var text = q.value.trim();
      if (!text) { results.innerHTML = ""; status.textContent = ""; return; }
      var mine = ++seq;
      status.textContent = set.dataset.msgWait;
      fetch(url + "?q=" + encodeURIComponent(text) + "&limit=10", { credentials: "same-origin",
                                                                    headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (mine !== seq) return;
          if (!res.ok) { results.innerHTML = ""; status.textContent = res.body.error || set.dataset.msgFail; return; }
          show(res.body);
          status.textContent = res.body.length ? fmt(set.dataset.msgFound, "n", res.body.length) : set.dataset.msgNone;
        })
        .catch(function () { if (mine === seq) status.textContent = set.dataset.msgFail; });
    }

    q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 300); });
    q.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); clearTimeout(timer); search(); }  // never submits the report
    });
    box.querySelector("[data-party-find]").addEventListener("click", function () { clearTimeout(timer); search(); });
    // a row copied by "Add another" from a linked row starts unlinked
    new MutationObserver(function (changes) {
      changes.forEach(function (ch) {
        Array.prototype.forEach.call(ch.addedNodes, function (n) {
          if (n.nodeType === 1 && n.hasAttribute("data-row")) {
            var rid = n.querySelector("[data-party-rid]");
            if (rid && !rid.value) link(n, null);
          }
        });
      });
    }).observe(set, { childList: true });
    set.addEventListener("click", function (ev) {
      var t = ev.target.closest("[data-party-unlink]");
      if (t) { ev.preventDefault(); link(t.closest("[data-row]"), null); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-parties]").forEach(setup);
  });
})();

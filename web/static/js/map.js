/* Gridflow maps (Leaflet, served locally). Every element with data-map gets a map:
 *   report      the location widget: her grid's outline, a draggable pin that fills the lat/long
 *               inputs, a warning when the pin lies outside the grid
 *   pick        the hotline intake page: the jurisdiction's outline, a pin that fills lat/long
 *   case        one case's pin and its grid's outline
 *   cases       open cases coloured by state, clustered when zoomed out, click through to the case
 *   choropleth  the dashboard: child units coloured by an indicator chosen in a <select>
 * GeoJSON comes from data-src (WGS-84). data-tiles is a tile URL template (none: plain background);
 * data-crs="gcj02" shifts what is drawn to GCJ-02 and a dragged pin back to WGS-84.
 * Strings come translated in data-msg-* attributes. */
(function () {
  "use strict";
  if (!window.L) return;
  var CITY = [32.0, 112.1];  // Xiangyang, when nothing else is known

  // ---- GCJ-02 (the same published algorithm as grid/org/boundaries.py, which is the tested one)
  var A = 6378245.0, EE = 0.00669342162296594323;
  function outOfChina(lat, lng) { return !(lng >= 72.004 && lng <= 137.8347 && lat >= 0.8293 && lat <= 55.8271); }
  function tLat(x, y) {
    var r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3;
    r += (20 * Math.sin(y * Math.PI) + 40 * Math.sin(y / 3 * Math.PI)) * 2 / 3;
    r += (160 * Math.sin(y / 12 * Math.PI) + 320 * Math.sin(y * Math.PI / 30)) * 2 / 3;
    return r;
  }
  function tLng(x, y) {
    var r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2 / 3;
    r += (20 * Math.sin(x * Math.PI) + 40 * Math.sin(x / 3 * Math.PI)) * 2 / 3;
    r += (150 * Math.sin(x / 12 * Math.PI) + 300 * Math.sin(x / 30 * Math.PI)) * 2 / 3;
    return r;
  }
  function toGcj(lat, lng) {
    if (outOfChina(lat, lng)) return [lat, lng];
    var dLat = tLat(lng - 105, lat - 35), dLng = tLng(lng - 105, lat - 35);
    var rad = lat / 180 * Math.PI, magic = 1 - EE * Math.sin(rad) * Math.sin(rad), sq = Math.sqrt(magic);
    dLat = (dLat * 180) / ((A * (1 - EE)) / (magic * sq) * Math.PI);
    dLng = (dLng * 180) / (A / sq * Math.cos(rad) * Math.PI);
    return [lat + dLat, lng + dLng];
  }
  function fromGcj(lat, lng) {
    var la = lat, ln = lng;
    for (var i = 0; i < 30; i++) {
      var g = toGcj(la, ln), dy = g[0] - lat, dx = g[1] - lng;
      la -= dy; ln -= dx;
      if (Math.abs(dy) < 1e-10 && Math.abs(dx) < 1e-10) break;
    }
    return [la, ln];
  }

  function setup(el) {
    var gcj = el.dataset.crs === "gcj02";
    var show = gcj ? function (lat, lng) { return toGcj(lat, lng); } : function (lat, lng) { return [lat, lng]; };
    var back = gcj ? fromGcj : function (lat, lng) { return [lat, lng]; };
    var map = L.map(el, { zoomControl: true, attributionControl: !!el.dataset.tiles, maxZoom: 18, minZoom: 5 });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { attribution: el.dataset.attribution || "", maxZoom: 18,
                                      subdomains: el.dataset.subdomains || "abc" }).addTo(map);
    } else {
      el.classList.add("map-plain");
    }
    map.setView(show(CITY[0], CITY[1]), 9);
    return { map: map, show: show, back: back,
             geo: function (data, opts) {
               return L.geoJSON(data, Object.assign({ coordsToLatLng: function (c) { var p = show(c[1], c[0]); return L.latLng(p[0], p[1]); } }, opts || {}));
             } };
  }

  // ray casting over GeoJSON rings ([lng, lat]); holes count against
  function inRing(lat, lng, ring) {
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if (((yi > lat) !== (yj > lat)) && (lng < (xj - xi) * (lat - yi) / (yj - yi) + xi)) inside = !inside;
    }
    return inside;
  }
  function inGeometry(lat, lng, g) {
    if (!g) return null;
    var polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    return polys.some(function (rings) {
      return inRing(lat, lng, rings[0]) && !rings.slice(1).some(function (h) { return inRing(lat, lng, h); });
    });
  }

  function load(url, done, fail) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(done).catch(function (e) { if (fail) fail(e); else if (window.console) console.error("map: " + e); });
  }

  var OUTLINE = { color: "#1f5fa8", weight: 2, fill: true, fillOpacity: 0.06 };

  function pinMap(el, m, features, pickGrid) {
    var field = el.dataset.field;
    var lat = el.dataset.lat ? document.getElementById(el.dataset.lat) : document.querySelector('[name="' + field + '.lat"]');
    var lng = el.dataset.lng ? document.getElementById(el.dataset.lng) : document.querySelector('[name="' + field + '.lng"]');
    var warn = el.parentNode.querySelector("[data-map-warning]");
    var units = features.filter(function (f) { return f.properties.kind === "unit"; });
    var layer = m.geo({ type: "FeatureCollection", features: units }, { style: function () { return OUTLINE; } }).addTo(m.map);
    m.map.invalidateSize();
    if (units.length && layer.getBounds().isValid()) m.map.fitBounds(layer.getBounds(), { padding: [16, 16] });
    function current() {
      var code = pickGrid ? pickGrid() : null;
      return units.filter(function (f) { return !code || f.properties.code === code; });
    }
    function start() {
      var a = parseFloat(lat && lat.value), b = parseFloat(lng && lng.value);
      if (isFinite(a) && isFinite(b)) return [a, b];
      var u = current()[0];
      if (u && u.properties.lat != null) return [u.properties.lat, u.properties.lng];
      return CITY;
    }
    var p0 = start(), s0 = m.show(p0[0], p0[1]);
    var pin = L.marker(s0, { draggable: true, keyboard: true, title: el.dataset.msgPin || "",
                             alt: el.dataset.msgPin || "" }).addTo(m.map);
    pin.getElement && pin.getElement() && pin.getElement().setAttribute("data-pin", "1");
    function check(a, b) {
      if (!warn) return;
      var grids = current(), known = grids.filter(function (f) { return f.geometry; });
      if (!known.length) { warn.hidden = true; return; }
      var inside = known.some(function (f) { return inGeometry(a, b, f.geometry); });
      warn.hidden = inside;
      el.setAttribute("data-inside", inside ? "1" : "0");
    }
    function fill(a, b) {
      if (lat) lat.value = a.toFixed(6);
      if (lng) lng.value = b.toFixed(6);
      last = [lat && lat.value, lng && lng.value];
      check(a, b);
    }
    var last = [lat && lat.value, lng && lng.value];
    pin.on("dragend", function () { var ll = pin.getLatLng(), w = m.back(ll.lat, ll.lng); fill(w[0], w[1]); });
    m.map.on("click", function (ev) { pin.setLatLng(ev.latlng); var w = m.back(ev.latlng.lat, ev.latlng.lng); fill(w[0], w[1]); });
    // typed coordinates or "use my location" (app.js sets the inputs): follow them
    function follow() {
      var now = [lat && lat.value, lng && lng.value];
      if (now[0] === last[0] && now[1] === last[1]) return;
      last = now;
      var a = parseFloat(now[0]), b = parseFloat(now[1]);
      if (isFinite(a) && isFinite(b)) { var s = m.show(a, b); pin.setLatLng(s); m.map.panTo(s); check(a, b); }
    }
    [lat, lng].forEach(function (i) { if (i) { i.addEventListener("input", follow); i.addEventListener("change", follow); } });
    setInterval(function () { if (!document.hidden) follow(); }, 800);
    var gridSel = document.querySelector('select[name="grid"]');
    if (gridSel && pickGrid) gridSel.addEventListener("change", function () { var p = start(); check(p[0], p[1]); });
    if (isFinite(parseFloat(lat && lat.value))) check(p0[0], p0[1]);
    el.setAttribute("data-ready", "1");
  }

  function reportMap(el) {
    var m = setup(el);
    var pick = function () { var g = document.querySelector('[name="grid"]'); return g ? g.value : null; };
    load(el.dataset.src, function (fc) { pinMap(el, m, fc.features, pick); },
         function () { pinMap(el, m, [], null); });
  }

  function pickMap(el) {
    var m = setup(el);
    load(el.dataset.src, function (fc) { pinMap(el, m, fc.features, null); }, function () { pinMap(el, m, [], null); });
  }

  function caseMap(el) {
    var m = setup(el);
    load(el.dataset.src, function (fc) {
      var units = fc.features.filter(function (f) { return f.properties.kind === "unit" && f.geometry; });
      var pts = fc.features.filter(function (f) { return f.properties.kind === "case"; });
      var layer = m.geo({ type: "FeatureCollection", features: units }, { style: function () { return OUTLINE; } }).addTo(m.map);
      var bounds = layer.getBounds();
      pts.forEach(function (f) {
        var c = f.geometry.coordinates, s = m.show(c[1], c[0]);
        L.marker(s, { title: f.properties.case_no, alt: f.properties.case_no }).addTo(m.map);
        bounds.extend(s);
        var note = el.parentNode.querySelector(f.properties.approx ? "[data-map-approx]" : (f.properties.inside === false ? "[data-map-outside]" : "[data-none]"));
        if (note) note.hidden = false;
      });
      if (bounds.isValid()) m.map.fitBounds(bounds, { padding: [16, 16], maxZoom: 16 });
      el.setAttribute("data-ready", "1");
    });
  }

  var STATE_CLASS = { normal: "st-normal", warned: "st-warned", overdue: "st-overdue" };
  var RANK = { normal: 0, warned: 1, overdue: 2 };

  function casesMap(el) {
    var m = setup(el);
    var names = JSON.parse(el.dataset.states || "{}");
    load(el.dataset.src, function (fc) {
      var units = fc.features.filter(function (f) { return f.properties.kind === "unit" && f.geometry; });
      var pts = fc.features.filter(function (f) { return f.properties.kind === "case"; });
      var outline = m.geo({ type: "FeatureCollection", features: units }, { interactive: false, style: function (f) {
        return f.properties.role === "child" ? { color: "#7f93ad", weight: 1, fill: false, dashArray: "3 3", className: "map-child" } : { color: "#1f5fa8", weight: 2, fill: false, className: "map-scope" };
      } }).addTo(m.map);
      var cluster = L.markerClusterGroup({
        showCoverageOnHover: false, maxClusterRadius: 50,
        iconCreateFunction: function (c) {
          var worst = 0, sup = false;
          c.getAllChildMarkers().forEach(function (mk) { worst = Math.max(worst, RANK[mk.options.state] || 0); sup = sup || mk.options.supervised; });
          var st = ["normal", "warned", "overdue"][worst];
          return L.divIcon({ html: "<span>" + c.getChildCount() + "</span>", className: "case-cluster " + STATE_CLASS[st] + (sup ? " st-supervised" : ""), iconSize: [36, 36] });
        }
      });
      var base = el.dataset.caseUrl || "/cases/0";
      pts.forEach(function (f) {
        var p = f.properties, c = f.geometry.coordinates, s = m.show(c[1], c[0]);
        var icon = L.divIcon({ className: "case-pin " + STATE_CLASS[p.state] + (p.supervised ? " st-supervised" : ""), iconSize: [16, 16] });
        var mk = L.marker(s, { icon: icon, state: p.state, supervised: p.supervised, title: p.case_no, alt: p.case_no, keyboard: true });
        var a = document.createElement("a");
        a.href = base.replace(/0$/, String(p.id));
        a.textContent = p.case_no;
        var box = document.createElement("div");
        box.className = "case-pop";
        box.appendChild(a);
        var st = document.createElement("div");
        st.textContent = (names[p.state] || p.state) + (p.supervised ? " · " + (names.supervised || "supervised") : "") + (p.approx ? " · " + (el.dataset.msgApprox || "") : "");
        box.appendChild(st);
        mk.bindPopup(box);
        mk.on("add", function () { var e = mk.getElement(); if (e) { e.setAttribute("data-case", p.case_no); e.setAttribute("data-state", p.state); } });
        cluster.addLayer(mk);
      });
      // many cases: the server sends one group per child unit; its marker opens that unit's map
      var groups = fc.features.filter(function (f) { return f.properties.kind === "group"; });
      var unitUrl = el.dataset.unitUrl || "/map?unit=";
      groups.forEach(function (f) {
        var p = f.properties, c = f.geometry.coordinates, s = m.show(c[1], c[0]);
        var icon = L.divIcon({ html: "<span>" + p.count + "</span>", className: "case-cluster case-group " + STATE_CLASS[p.state] + (p.supervised ? " st-supervised" : ""), iconSize: [44, 44] });
        var mk = L.marker(s, { icon: icon, title: p.name + " · " + p.count, alt: p.name, keyboard: true }).addTo(m.map);
        var a = document.createElement("a");
        a.href = unitUrl + encodeURIComponent(p.code);
        a.textContent = p.name + " · " + p.count;
        var box = document.createElement("div");
        box.className = "case-pop";
        box.appendChild(a);
        ["warned", "overdue", "supervised"].forEach(function (k) {
          if (!p.counts[k]) return;
          var d = document.createElement("div");
          d.textContent = (names[k] || k) + " " + p.counts[k] + (p.at_least && k !== "supervised" ? "+" : "");
          box.appendChild(d);
        });
        mk.bindPopup(box);
        mk.on("add", function () { var e = mk.getElement(); if (e) { e.setAttribute("data-group", p.code); e.setAttribute("data-state", p.state); } });
      });
      m.map.addLayer(cluster);
      var b = outline.getBounds();
      if (!b.isValid() && pts.length) b = cluster.getBounds();
      if (b.isValid()) m.map.fitBounds(b, { padding: [16, 16] });
      el.setAttribute("data-ready", "1");
      el.setAttribute("data-count", String(pts.length));
      el.setAttribute("data-groups", String(groups.length));
    });
  }

  var PALETTE = ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"];

  function choropleth(el) {
    var m = setup(el);
    var select = document.getElementById(el.dataset.select);
    var legend = el.parentNode.querySelector("[data-map-legend]");
    var kinds = JSON.parse(el.dataset.kinds || "{}");
    load(el.dataset.src, function (fc) {
      var feats = fc.features.filter(function (f) { return f.geometry; });
      var layer = null;
      function fmt(key, v) {
        if (v == null) return "—";
        return kinds[key] === "rate" ? (v * 100).toFixed(1) + "%" : (Math.round(v * 10) / 10).toString();
      }
      function draw() {
        var key = select ? select.value : Object.keys(kinds)[0];
        var vals = feats.map(function (f) { return f.properties.values[key]; }).filter(function (v) { return v != null; }).sort(function (a, b) { return a - b; });
        var breaks = [];
        for (var i = 1; i < PALETTE.length; i++) breaks.push(vals.length ? vals[Math.min(vals.length - 1, Math.floor(vals.length * i / PALETTE.length))] : 0);
        function colour(v) {
          if (v == null) return "#f4f4f4";
          var k = 0;
          while (k < breaks.length && v > breaks[k]) k++;
          return PALETTE[k];
        }
        if (layer) m.map.removeLayer(layer);
        layer = m.geo({ type: "FeatureCollection", features: feats }, {
          style: function (f) { return { color: "#555", weight: 1, fillColor: colour(f.properties.values[key]), fillOpacity: 0.8 }; },
          onEachFeature: function (f, l) {
            l.bindTooltip(f.properties.name + ": " + fmt(key, f.properties.values[key]));
            l.on("click", function () { if (el.dataset.drill) window.location.href = el.dataset.drill.replace("__unit__", f.properties.code); });
          }
        }).addTo(m.map);
        if (layer.getBounds().isValid()) m.map.fitBounds(layer.getBounds(), { padding: [8, 8] });
        if (legend) {
          legend.textContent = "";
          var lo = vals.length ? vals[0] : null;
          PALETTE.forEach(function (c, i) {
            var hi = i < breaks.length ? breaks[i] : (vals.length ? vals[vals.length - 1] : null);
            var item = document.createElement("span");
            item.className = "legend-item";
            var sw = document.createElement("i");
            sw.style.background = c;
            item.appendChild(sw);
            item.appendChild(document.createTextNode((i === 0 ? fmt(key, lo) : "") + (i === 0 ? " – " : "≤ ") + fmt(key, hi)));
            legend.appendChild(item);
          });
        }
        el.setAttribute("data-ready", "1");
      }
      if (select) select.addEventListener("change", draw);
      draw();
    });
  }

  var MODES = { report: reportMap, pick: pickMap, "case": caseMap, cases: casesMap, choropleth: choropleth };
  function start() {
    document.querySelectorAll("[data-map]").forEach(function (el) {
      var f = MODES[el.dataset.map];
      if (f && !el.dataset.started) { el.dataset.started = "1"; el.hidden = false; f(el); }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();

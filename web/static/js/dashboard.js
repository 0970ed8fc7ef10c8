// Dashboard charts (ECharts, served from /static/vendor/echarts). The data comes from the
// <script type="application/json" id="dash-data"> block: the CSP forbids inline scripts.
(function () {
  "use strict";
  var block = document.getElementById("dash-data");
  if (!block || !window.echarts) return;
  var data = JSON.parse(block.textContent);
  var wall = !!document.querySelector(".wall");
  var text = wall ? "#dfe8f5" : "#333";
  var charts = [];

  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el) return;
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    option.textStyle = { color: text, fontFamily: "WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif" };
    option.animation = false;
    chart.setOption(option);
    charts.push(chart);
  }

  var legend = { type: "scroll", bottom: 0, textStyle: { color: text } };
  var grid = { left: 40, right: 16, top: 36, bottom: 48, containLabel: true };
  draw("chart-rates", {
    title: { text: data.labels.rates, textStyle: { color: text, fontSize: 14 } },
    tooltip: { trigger: "axis", valueFormatter: function (v) { return v == null ? "—" : v + "%"; } },
    legend: legend, grid: grid,
    xAxis: { type: "category", data: data.months },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: data.rates.map(function (s) { return { name: s.name, type: "line", data: s.data, connectNulls: false }; })
  });
  draw("chart-counts", {
    title: { text: data.labels.counts, textStyle: { color: text, fontSize: 14 } },
    tooltip: { trigger: "axis" }, legend: legend, grid: grid,
    xAxis: { type: "category", data: data.months },
    yAxis: { type: "value", minInterval: 1 },
    series: data.counts.map(function (s) { return { name: s.name, type: "bar", data: s.data }; })
  });
  if (data.ranking && data.ranking.units.length) {
    var r = data.ranking;
    draw("chart-ranking", {
      title: { text: r.name, textStyle: { color: text, fontSize: 14 } },
      tooltip: { trigger: "axis" },
      grid: { left: 8, right: 24, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "value", min: 0, max: r.percent ? 100 : null, axisLabel: { formatter: r.percent ? "{value}%" : "{value}" } },
      yAxis: { type: "category", inverse: true, data: r.units },
      series: [{ type: "bar", data: r.values, label: { show: true, position: "right",
        formatter: function (p) { return p.value == null ? "—" : p.value + (r.percent ? "%" : ""); } } }]
    });
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    var seconds = parseInt(refresh.getAttribute("data-refresh"), 10);
    if (seconds > 0) setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();

// The traffic chart: passages per line and direction over the last day, drawn by uPlot (served by kuzet),
// fetched again every 5 seconds so new passages appear within seconds.
(function () {
  const el = document.getElementById("traffic-chart");
  if (!el || !window.uPlot) return;
  const colours = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b", "#975a16", "#1a202c"];
  const url = "/api/traffic/series?hours=24&bucket_s=600" + (el.dataset.camera ? "&camera=" + encodeURIComponent(el.dataset.camera) : "");
  let plot = null;
  let labels = "";
  function draw(d) {
    const data = [d.t].concat(d.series.map(function (s) { return s.values; }));
    const now = d.series.map(function (s) { return s.label; }).join("|");
    el.dataset.total = String(d.series.reduce(function (a, s) { return a + s.values.reduce(function (x, y) { return x + y; }, 0); }, 0));
    if (plot && now === labels) { plot.setData(data); return; }
    if (plot) plot.destroy();
    labels = now;
    plot = new uPlot({
      width: Math.max(320, el.clientWidth || 800), height: 260,
      scales: { x: { time: true } },
      series: [{}].concat(d.series.map(function (s, i) {
        return { label: s.label, stroke: colours[i % colours.length], width: 2, points: { show: false } };
      })),
      axes: [{}, { label: "passages / 10 min" }],
    }, data, el);
  }
  function load() {
    fetch(url).then(function (r) { return r.ok ? r.json() : null; }).then(function (d) { if (d) draw(d); });
  }
  load();
  setInterval(load, 5000);
  window.addEventListener("resize", function () { if (plot) plot.setSize({ width: Math.max(320, el.clientWidth), height: 260 }); });
})();

// The map of cameras, drawn by Leaflet (served by kuzet) over the config's GeoJSON or site plan; no tiles from outside.
(function () {
  const el = document.getElementById("map");
  if (!el || !window.L) return;
  const data = JSON.parse(document.getElementById("map-data").textContent);
  const colours = { up: "#2f855a", failed: "#c53030", stalled: "#c53030", unknown: "#c53030",
    reconnecting: "#dd6b20", restarting: "#dd6b20", starting: "#dd6b20" };
  const markers = {};
  let planHeight = 0;
  const plan = data.base === "plan";
  const map = L.map(el, plan ? { crs: L.CRS.Simple, minZoom: -4, attributionControl: false } : { attributionControl: false });

  map.on("zoomend", function () { el.dataset.zoom = String(map.getZoom()); });

  function where(c) {
    return plan ? [planHeight - c.position.y, c.position.x] : [c.position.lat, c.position.lon];
  }
  function details(c) { // built from text nodes: a camera's name or reason is never read as markup
    const box = document.createElement("div");
    const title = document.createElement("strong");
    title.textContent = c.name + " · " + c.state;
    box.appendChild(title);
    for (const line of [c.reason, c.open_alerts ? "alerts waiting: " + c.open_alerts : "",
      c.live && c.live.frames_analysed !== undefined ? "frames analysed: " + c.live.frames_analysed : ""]) {
      if (!line) continue;
      const p = document.createElement("div");
      p.textContent = line;
      box.appendChild(p);
    }
    const link = document.createElement("a");
    link.href = "/cameras/" + encodeURIComponent(c.name);
    link.textContent = "→ " + c.name;
    box.appendChild(link);
    return box;
  }
  function place(cameras) {
    for (const c of cameras) {
      const style = { radius: c.open_alerts ? 11 : 8, color: "#1a202c", weight: 1, fillOpacity: 0.9,
        fillColor: colours[c.state] || "#4a5568" };
      if (markers[c.name]) {
        markers[c.name].setStyle(style).setPopupContent(details(c));
      } else {
        markers[c.name] = L.circleMarker(where(c), style).bindPopup(details(c)).bindTooltip(c.name).addTo(map);
        markers[c.name].getElement().setAttribute("data-camera", c.name);
      }
    }
  }
  function start(bounds) { // the view first: Leaflet draws a marker only on a map that has one
    const points = data.cameras.map(where);
    if (bounds) map.fitBounds(bounds);
    else if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 16 });
    else map.setView([0, 0], 1);
    place(data.cameras);
    el.dataset.ready = "1";
  }
  if (plan) {
    const img = new Image();
    img.onload = function () {
      planHeight = img.naturalHeight;
      const bounds = [[0, 0], [img.naturalHeight, img.naturalWidth]];
      L.imageOverlay("/api/map/plan", bounds, { alt: "site plan" }).addTo(map);
      start(bounds);
    };
    img.src = "/api/map/plan";
  } else if (data.base === "geojson") {
    fetch("/api/map/geojson").then(function (r) { return r.json(); }).then(function (g) {
      const layer = L.geoJSON(g, { style: { color: "#2b6cb0", weight: 1, fillOpacity: 0.05 } }).addTo(map);
      start(layer.getBounds().isValid() ? layer.getBounds() : null);
    });
  } else {
    start(null);
  }
  document.querySelectorAll("button[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      const m = markers[b.dataset.zoom];
      if (!m) return;
      map.setView(m.getLatLng(), plan ? 1 : 17);
      m.openPopup();
      el.dataset.zoomed = b.dataset.zoom;
    });
  });
  setInterval(function () { // states and alerts follow kuzet run
    fetch("/api/map").then(function (r) { return r.ok ? r.json() : null; }).then(function (d) {
      if (d) place(d.cameras);
    });
  }, 10000);
})();

// Live updates over server-sent events: new alerts and counts. No dependencies.
(function () {
  if (!document.querySelector("header")) return; // not signed in
  const source = new EventSource("/api/stream");
  const list = document.getElementById("live-alerts");
  const badge = document.getElementById("pending-count");
  source.addEventListener("alert", function (e) {
    const a = JSON.parse(e.data);
    if (list) {
      const placeholder = list.querySelector(".muted");
      if (placeholder) placeholder.remove();
      const li = document.createElement("li");
      li.className = "live-alert";
      const text = document.body.dataset.alertText || "Alert %(id)s on %(camera)s (score %(score)s, %(status)s)";
      li.textContent = text.replace("%(id)s", a.id).replace("%(camera)s", a.camera)
        .replace("%(score)s", Number(a.score).toFixed(3)).replace("%(status)s", a.status);
      if (document.body.dataset.canReview) { // only reviewers may open the review queue
        const link = document.createElement("a");
        link.href = "/review#alert-" + a.id;
        link.textContent = " " + (document.body.dataset.reviewLabel || "review");
        li.appendChild(link);
      }
      list.prepend(li);
    }
  });
  source.addEventListener("status", function (e) {
    const s = JSON.parse(e.data);
    const pending = (s.alerts && s.alerts.pending) || 0;
    if (badge) badge.textContent = pending ? String(pending) : "";
    for (const k of ["pending", "confirmed", "rejected"]) {
      const el = document.getElementById("alerts-" + k);
      if (el) el.textContent = String((s.alerts && s.alerts[k]) || 0);
    }
  });
})();
// The camera wall: each live picture is fetched again every few seconds (no-store), one at a time per tile; the
// tiles follow their cameras' states (the page is fetched again and a tile whose state or reason changed replaced).
(function () {
  const wall = document.getElementById("wall");
  if (!wall) return;
  function said(tile) {
    const state = tile.querySelector(".state"), down = tile.querySelector(".down");
    return (state ? state.textContent : "") + "|" + (down ? down.textContent : "");
  }
  let asking = false;
  function ids(root) {
    return Array.prototype.map.call(root.querySelectorAll("section.tile"), function (t) { return t.id; }).join(" ");
  }
  setInterval(function () {
    if (asking) return;
    asking = true;
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("wall");
        if (!fresh) return;
        if (ids(fresh) !== ids(wall)) { wall.replaceChildren.apply(wall, Array.from(fresh.childNodes)); return; }
        fresh.querySelectorAll("section.tile").forEach(function (tile) {
          const old = document.getElementById(tile.id);
          if (said(old) !== said(tile)) { old.replaceWith(tile); return; }
          const counts = old.querySelector(".tile-counts"), now = tile.querySelector(".tile-counts");
          if (counts && now) counts.replaceWith(now);
        });
      })
      .catch(function () {})
      .finally(function () { asking = false; });
  }, 5000);
  setInterval(function () {
    wall.querySelectorAll("img[data-refresh]").forEach(function (img) {
      if (img.dataset.loading) return;
      img.dataset.loading = "1";
      const next = new Image();
      next.onload = function () { img.src = next.src; delete img.dataset.loading; };
      next.onerror = function () { delete img.dataset.loading; };
      next.src = img.dataset.refresh + "?t=" + Date.now();
    });
  }, 3000);
})();

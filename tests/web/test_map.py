"""The map: cameras placed from the config over a GeoJSON city map or a site plan, served by kuzet alone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from pydantic import ValidationError

from kuzet.config.models import KuzetConfig
from kuzet.services.container import Services, build_services
from kuzet.store.status import CameraStatus, ServiceStatus, write_status
from kuzet.web.app import create_app
from tests.conftest import PASSWORD
from tests.web.conftest import serve, sign_in

pytestmark = pytest.mark.store
ALMATY = {  # a square around the centre of Almaty, drawn instead of map tiles
    "type": "FeatureCollection",
    "features": [{"type": "Feature", "properties": {"name": "centre"}, "geometry": {"type": "Polygon",
        "coordinates": [[[76.90, 43.23], [76.97, 43.23], [76.97, 43.27], [76.90, 43.27], [76.90, 43.23]]]}}],
}  # fmt: skip


def _config(geo: bool) -> dict[str, object]:
    where = (
        [{"lat": 43.2389, "lon": 76.9453}, {"lat": 43.2566, "lon": 76.9286}]
        if geo
        else [{"x": 120, "y": 80}, {"x": 500, "y": 300}]
    )
    return {
        "map": {"geojson": "city.geojson"} if geo else {"plan": "plan.png"},
        "cameras": [
            {"name": "abay-1", "source": "rtsp://10.0.0.5/a", "purpose": "junction safety", "position": where[0]},
            {"name": "abay-2", "source": "rtsp://10.0.0.6/a", "purpose": "junction safety", "position": where[1]},
            {"name": "lobby", "source": "rtsp://10.0.0.7/a", "purpose": "staff access"},
        ],
    }


def _services(root: Path, geo: bool) -> Services:
    root.mkdir(parents=True)
    (root / "city.geojson").write_text(json.dumps(ALMATY))
    cv2.imwrite(str(root / "plan.png"), np.full((400, 640, 3), 240, np.uint8))
    svc = build_services(root, KuzetConfig.model_validate(_config(geo)))
    admin = svc.users.init_admin("admin", PASSWORD)
    svc.users.add(admin, "olga", PASSWORD, ["operator"])
    svc.users.add(admin, "rustam", PASSWORD, ["requester"])
    now = time.time()
    cams = [CameraStatus("abay-1", state="up"), CameraStatus("abay-2", state="failed", reason="connection refused")]
    write_status(root, ServiceStatus(pid=1, started=now - 5, updated=now, state="running", cameras=cams))
    return svc


@pytest.fixture
def geo_site(tmp_path: Path) -> Iterator[Services]:
    svc = _services(tmp_path / "data", geo=True)
    yield svc
    svc.close()


def test_the_map_places_cameras_and_serves_its_own_geojson(geo_site: Services, tmp_path: Path) -> None:
    with TestClient(create_app(geo_site)) as client:
        token = geo_site.users.login("olga", PASSWORD)[1]
        h = {"Authorization": f"Bearer {token}"}
        m = client.get("/api/map", headers=h).json()
        assert m["base"] == "geojson" and m["unplaced"] == ["lobby"]
        placed = {c["name"]: c for c in m["cameras"]}
        assert placed["abay-1"]["position"] == {"lat": 43.2389, "lon": 76.9453} and placed["abay-1"]["state"] == "up"
        assert placed["abay-2"]["state"] == "failed" and placed["abay-2"]["open_alerts"] == 0
        geo = client.get("/api/map/geojson", headers=h)
        assert geo.headers["content-type"] == "application/geo+json" and geo.json() == ALMATY
        assert client.get("/api/map/plan", headers=h).status_code == 404  # this config names no plan
        (geo_site.ctx.data_dir / "city.geojson").write_text('{"type": "Nonsense"}')
        assert client.get("/api/map/geojson", headers=h).status_code == 422
        other = {"Authorization": f"Bearer {geo_site.users.login('rustam', PASSWORD)[1]}"}
        assert client.get("/api/map", headers=other).status_code == 403


@pytest.mark.parametrize(
    ("position", "fragment"),
    [({"lat": 43.2}, "both lat and lon"), ({"lat": 43.2, "lon": 76.9, "x": 3, "y": 4}, "not both"),
     ({"lat": 91, "lon": 0}, "less than or equal"), ({}, "not both or neither")],
)  # fmt: skip
def test_positions_are_checked(position: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        KuzetConfig.model_validate({"cameras": [{"name": "a", "source": "x.mp4", "position": position}]})
    with pytest.raises(ValidationError, match="not both"):
        KuzetConfig.model_validate({"map": {"geojson": "a.json", "plan": "b.png"}})


@pytest.mark.parametrize("geo", [True, False], ids=["city-geojson", "site-plan"])
def test_the_map_in_the_browser(tmp_path: Path, browser: Browser, geo: bool) -> None:
    from axe_playwright_python.sync_playwright import Axe

    svc = _services(tmp_path / "data", geo=geo)
    try:
        with serve(create_app(svc)) as base:
            page = sign_in(browser, base, "olga")
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
            page.goto(f"{base}/map")
            expect(page.locator("#map[data-ready='1']")).to_have_count(1, timeout=15_000)
            expect(page.locator("path[data-camera]")).to_have_count(2)  # lobby has no position
            colours = page.eval_on_selector_all("path[data-camera]", "els => els.map(e => e.getAttribute('fill'))")
            assert sorted(colours) == ["#2f855a", "#c53030"]  # up and failed
            before = float(page.get_attribute("#map", "data-zoom") or "0")
            page.click("button[data-zoom='abay-2']")
            expect(page.locator("#map[data-zoomed='abay-2']")).to_have_count(1)
            expect(page.locator(".leaflet-popup-content")).to_contain_text("connection refused")
            deadline = time.monotonic() + 10
            while float(page.get_attribute("#map", "data-zoom") or "0") <= before and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            assert float(page.get_attribute("#map", "data-zoom") or "0") > before  # zoomed in on the camera
            assert outside == []  # no tiles, no CDN
            found = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}})
            serious = [v["id"] for v in found.response["violations"] if v["impact"] in ("serious", "critical")]
            assert serious == []
            page.context.close()  # its polling ends before the server and the store close
    finally:
        svc.close()

"""The traffic page over a real analysis: counts per line and direction, violations with their evidence packages
(downloaded for a written justification, refused once tampered with), and plate search with near matches."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from sqlalchemy import text

from kuzet.config.models import KuzetConfig
from kuzet.detect.plate.formats import near
from kuzet.services.container import Services, build_services
from kuzet.store.repositories.traffic import ViolationRecord
from kuzet.web.app import create_app
from tests.conftest import PASSWORD
from tests.web.conftest import serve, sign_in

pytestmark = pytest.mark.store
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "car-park.yaml"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[tuple[Services, TestClient]]:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["cameras"][0]["traffic"]["speed_limit_kmh"] = 5  # every car in the car park is "speeding": evidence to look at
    svc = build_services(tmp_path_factory.mktemp("traffic") / "data", KuzetConfig.model_validate(raw))
    admin = svc.users.init_admin("admin", PASSWORD)
    for name, role in (("olga", "operator"), ("timur", "auditor"), ("rustam", "requester")):
        svc.users.add(admin, name, PASSWORD, [role])
    svc.analysis.analyze(admin, str(data_root / "video" / "car-detection.mp4"), camera="car-park")
    with TestClient(create_app(svc), follow_redirects=False) as client:
        yield svc, client
    svc.close()


def _rows(svc: Services, sql: str) -> list[tuple[object, ...]]:
    """Rows of a query on the services' own store (the module's database on either engine)."""
    with svc.uow.read() as r:
        return [tuple(row) for row in r.session.execute(text(sql))]


def _sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    assert client.post("/login", data={"name": name, "password": PASSWORD}).status_code == 303


def test_counts_violations_and_the_evidence_package(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "olga")
    page = client.get("/traffic").text
    counts = page.split('id="traffic-counts"', 1)[1].split("</table>", 1)[0]
    assert "<td>middle</td><td>in</td>" in counts and "<td>middle</td><td>out</td>" in counts
    assert page.count('<tr id="passage-') == 4  # the four cars counted by eye (tests/analytics/test_traffic.py)
    violations = page.split('id="violations"', 1)[1].split("</table>", 1)[0]
    assert "speeding" in violations
    with svc.uow.read() as r:
        (first, *_) = r.traffic.list("violations", camera=None, plate=None, limit=10, offset=0)
    assert isinstance(first, ViolationRecord)
    csrf = client.cookies["kuzet_csrf"]
    url = f"/traffic/violations/{first.id}/evidence"
    refused = client.post(url, data={"justification": "", "csrf_token": csrf})
    assert (
        refused.status_code == 303 and "needs a written justification" in client.get(refused.headers["location"]).text
    )
    why = "fine appeal 44/2026 by the vehicle's keeper"
    answer = client.post(url, data={"justification": why, "csrf_token": csrf})
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
    assert {"manifest.json", "frame_1.jpg"} <= names
    assert manifest["kind"] == "speeding" and "speed_kmh" in manifest["measurements"]
    assert manifest["calibration"] is not None  # the calibration the speed rests on travels with it
    exported = _rows(svc, "SELECT object, justification FROM audit_entries WHERE action = 'evidence.export'")
    assert exported == [(f"violation:{first.id}", why)]

    frame = svc.ctx.media.path(first.evidence) / "frame_1.jpg"  # an insider swaps a frame on disk
    frame.write_bytes(frame.read_bytes()[:-100] + b"\0" * 100)
    tampered = client.post(url, data={"justification": why, "csrf_token": csrf})
    assert tampered.status_code == 303
    assert "frame_1.jpg was changed" in client.get(tampered.headers["location"]).text


def test_plates_are_found_with_near_matches_and_every_search_is_audited(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    with svc.uow.tx() as w:  # as if the reader had read this plate on the first passage
        first = w.session.execute(text("SELECT MIN(id) FROM traffic_passages")).scalar_one()
        w.session.execute(text("UPDATE traffic_passages SET plate = '123ABC02' WHERE id = :id"), {"id": first})
    _sign_in(client, "timur")
    exact = client.get("/traffic?plate=I23A8C02").text
    assert '<tr id="passage-' not in exact
    fuzzy = client.get("/traffic?plate=I23A8C02&fuzzy=1").text
    assert fuzzy.count('<tr id="passage-') == 1 and "123ABC02" in fuzzy
    one_off = client.get("/api/traffic/passages?plate=123ABD02&fuzzy=true").json()
    assert [p["plate"] for p in one_off["items"]] == ["123ABC02"]
    searches = _rows(
        svc, "SELECT COUNT(*) FROM audit_entries WHERE action = 'traffic.passages.view' AND actor = 'timur'"
    )
    assert searches[0][0] >= 3
    _sign_in(client, "rustam")
    assert client.get("/traffic").status_code == 403  # a requester sees no plates


def test_a_traffic_cameras_page_shows_its_recent_passages(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "olga")
    before = _rows(svc, "SELECT COUNT(*) FROM audit_entries WHERE action = 'traffic.passages.view'")[0][0]
    page = client.get("/cameras/car-park").text
    passages = page.split('id="camera-passages"', 1)[1].split("</table>", 1)[0]
    assert passages.count('<tr id="passage-') == 4 and " km/h" in passages  # speed ± its uncertainty
    assert 'href="/traffic?camera=car-park"' in page and 'href="/events?camera=car-park"' in page
    after = _rows(svc, "SELECT COUNT(*) FROM audit_entries WHERE action = 'traffic.passages.view'")[0][0]
    assert after == before + 1  # reading the plates is ledgered like the traffic page's


@pytest.mark.parametrize(
    ("query", "plate", "found"),
    [
        ("123ABC02", "123ABC02", True),
        ("I23A8C02", "123ABC02", True),  # I/1 and B/8 mixed up
        ("123ABC0", "123ABC02", True),  # one character missing
        ("123XBC02", "123ABC02", True),  # one character wrong
        ("12XXBC02", "123ABC02", False),  # two wrong
        ("123", "1234", False),  # too short to guess at
        ("", "123ABC02", False),
    ],
)
def test_near_plates(query: str, plate: str, found: bool) -> None:
    assert near(query, plate) is found


def test_the_chart_follows_new_passages_within_seconds(site: tuple[Services, TestClient], browser: Browser) -> None:
    from kuzet.analytics.traffic import Passage

    svc, client = site
    _sign_in(client, "olga")
    series = client.get("/api/traffic/series?hours=24&bucket_s=600").json()
    labels = {s["label"] for s in series["series"]}
    assert labels == {"middle · in", "middle · out"}
    assert sum(sum(s["values"]) for s in series["series"]) >= 4
    before = sum(sum(s["values"]) for s in series["series"])
    with serve(create_app(svc)) as base:
        page = sign_in(browser, base, "olga")
        page.goto(f"{base}/traffic")
        expect(page.locator("#traffic-chart canvas")).to_have_count(1, timeout=15_000)
        expect(page.locator("#traffic-chart")).to_have_attribute("data-total", str(before))
        with svc.uow.tx() as w:  # a live camera commits one more car
            run = w.session.execute(text("SELECT MAX(id) FROM analysis_runs")).scalar_one()
            w.traffic.add_passages(run, "car-park", [Passage(99, "middle", "in", 40.0, "car")], now=svc.ctx.now())
        expect(page.locator("#traffic-chart")).to_have_attribute("data-total", str(before + 1), timeout=12_000)
        page.context.close()  # its polling ends before the server and the store close

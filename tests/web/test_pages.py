"""The dashboard's pages as each role sees them: the menu, refusals and missing pages as pages, every camera's state.

Served by the real application (`kuzet.web.app.create_app`) over a real data directory, through Starlette's test
client; the same pages are walked in Chromium by `test_browser.py`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from kuzet.config.models import KuzetConfig
from kuzet.core.types import ROLES
from kuzet.services.container import Services
from kuzet.store.status import CameraStatus, ServiceStatus, write_status
from kuzet.web.chrome import MENU
from tests.conftest import PASSWORD, utc_today
from tests.support.rawdb import raw_db
from tests.web.conftest import role_site

pytestmark = pytest.mark.store
CONFIG = {"cameras": [{"name": "gate-1", "source": "rtsp://10.0.0.5/gate", "purpose": "staff access"}]}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Services, TestClient]]:
    with role_site(tmp_path / "data", KuzetConfig.model_validate(CONFIG)) as made:
        yield made


def _sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    answer = client.post("/login", data={"name": name, "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text


def _menu(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return [h for h in re.findall(r'href="([^"]+)"', nav) if h != "/docs"]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_only_links_it_may_follow(site: tuple[Services, TestClient], role: str) -> None:
    _, client = site
    _sign_in(client, role)
    links = _menu(client.get("/").text)
    assert links, f"{role} has an empty menu"
    for href in links:
        answer = client.get(href)
        assert answer.status_code == 200, f"{role} is refused {href}, which the menu offers"
    for link in MENU:
        if link.href not in links:
            assert client.get(link.href).status_code == 403, f"{role} may open {link.href} but the menu hides it"
    current = client.get(links[-1]).text
    assert f'href="{links[-1]}" aria-current="page"' in current  # the current page is marked
    assert current.count('aria-current="page"') == 1


def test_a_refusal_is_a_page_with_the_reason_and_the_menu_and_is_audited(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "operator")
    answer = client.get("/audit")
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "may not read the audit ledger" in answer.text
    assert _menu(answer.text)  # the way back
    with raw_db(svc.ctx.data_dir, read_only=True) as db:
        refused = db.execute(
            "SELECT object FROM audit_entries WHERE action = 'permission.denied' AND actor = 'operator'"
        ).fetchall()
    assert ("read the audit ledger",) in [tuple(r) for r in refused]
    api = client.get("/api/audit/log")  # a program still gets the one JSON error body
    assert api.status_code == 403 and api.json()["error"]["type"] == "PermissionDenied"


def test_missing_pages_are_pages_and_missing_api_routes_are_json(site: tuple[Services, TestClient]) -> None:
    _, client = site
    anonymous = client.get("/no-such-page")
    assert anonymous.status_code == 404 and 'href="/login"' in anonymous.text
    assert 'aria-label="Main"' not in anonymous.text  # no menu for nobody
    _sign_in(client, "auditor")
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page at /no-such-page" in page.text and '{"detail"' not in page.text
    camera = client.get("/cameras/gate-9")
    assert camera.status_code == 404 and "no camera named &#39;gate-9&#39;" in camera.text
    api = client.get("/api/no-such-route")
    assert api.status_code == 404 and api.json()["error"]["type"] == "HTTPError"


def test_cameras_that_are_down_are_listed_with_their_state(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    now = time.time()
    write_status(
        svc.ctx.data_dir,
        ServiceStatus(
            pid=1, started=now - 60, updated=now, state="running",
            cameras=[
                CameraStatus("gate-1", state="up", source="rtsp://10.0.0.5/gate", frames_analysed=120),
                CameraStatus("gate-2", state="failed", reason="5 attempts failed; last: connection refused",
                             source="rtsp://10.0.0.6/gate"),
                CameraStatus("car-park", state="reconnecting", reason="stream ended", source="rtsp://10.0.0.7/p"),
            ],
        ),
    )  # fmt: skip
    _sign_in(client, "operator")
    listing = client.get("/cameras").text
    for name, state in (("gate-1", "up"), ("gate-2", "failed"), ("car-park", "reconnecting")):
        row = listing.split(f'id="camera-{name}"', 1)[1].split("</tr>", 1)[0]
        assert f">{state}</span>" in row, f"{name} is not shown {state}"
    assert "connection refused" in listing
    assert "gate-2" in client.get("/").text  # the overview lists it too
    page = client.get("/cameras/gate-2")
    assert page.status_code == 200 and "No picture: the camera is failed" in page.text
    api = {c["name"]: c for c in client.get("/api/cameras").json()}
    assert api["gate-2"]["state"] == "failed" and api["gate-1"]["live"]["frames_analysed"] == 120

    write_status(  # the service stopped reporting (crashed): its last word is not shown as the truth
        svc.ctx.data_dir,
        ServiceStatus(pid=1, started=now - 600, updated=now - 300, state="running",
                      cameras=[CameraStatus("gate-1", state="up")]),
    )  # fmt: skip
    api = {c["name"]: c for c in client.get("/api/cameras").json()}
    assert api["gate-1"]["state"] == "unknown" and "stopped reporting" in str(api["gate-1"]["reason"])


def test_an_upload_error_names_the_file_not_the_servers_temporary_path(site: tuple[Services, TestClient]) -> None:
    _, client = site
    _sign_in(client, "operator")
    answer = client.post(
        "/people",
        data={"name": "Test Person", "consent": "form 7", "csrf_token": client.cookies["kuzet_csrf"]},
        files={"photos": ("holiday.jpg", b"this is not a picture", "image/jpeg")},
    )
    assert answer.status_code == 303
    shown = client.get(answer.headers["location"]).text
    assert "holiday.jpg" in shown
    assert "/tmp" not in shown and "upload-0" not in shown


def _store_events(svc: Services, n: int) -> None:
    """`n` match events on two cameras (stored through the repositories, as an analysis would)."""
    import numpy as np

    from kuzet.store.repositories.events import NewEvent, RunRecord
    from kuzet.store.repositories.gallery import NewTemplate

    now = svc.ctx.now()
    with svc.uow.tx() as w:
        ann, _ = w.gallery.add_templates(
            "Ann", [NewTemplate(np.ones(128, np.float32), "a")], model="m", cipher=svc.ctx.cipher, now=now
        )
        for cam in ("gate", "hall"):
            events = [NewEvent(ann.person_id, "Ann", 0.9, float(i), i + 1.0, i, "") for i in range(n // 2)]
            w.events.save_run(RunRecord(cam, "src", now, 10, 2, 2, 1, 1), events, now=now)


def _rows(html: str) -> int:
    return len(re.findall(r'<tr id="event-\d+">', html))


def test_events_page_filters_pages_and_exports_with_a_justification(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _store_events(svc, 120)
    _sign_in(client, "auditor")
    first = client.get("/events").text
    assert _rows(first) == 50 and 'id="older-events"' in first
    ids = re.findall(r'id="event-(\d+)"', first)
    assert ids == sorted(ids, key=int, reverse=True)  # newest first
    last = client.get("/events?offset=100").text
    assert _rows(last) == 20 and 'id="older-events"' not in last and "newer" in last
    gate = client.get("/events?camera=gate").text
    assert _rows(gate) == 50 and ">hall<" not in gate
    future = client.get(f"/events?from={(utc_today() + timedelta(days=2)).isoformat()}").text
    assert "No events." in future
    for bad_day in ("from=yesterday", "to=9999-12-31", "from=2026-02-30"):
        bad = client.get(f"/events?{bad_day}")
        assert bad.status_code == 422 and "is not a date" in bad.text, bad_day

    csrf = client.cookies["kuzet_csrf"]
    refused = client.post("/events/export?camera=hall", data={"justification": "", "csrf_token": csrf})
    assert (
        refused.status_code == 303 and "needs a written justification" in client.get(refused.headers["location"]).text
    )
    why = "request 17/2026 from the city prosecutor"
    csv_answer = client.post("/events/export?camera=hall", data={"justification": why, "csrf_token": csrf})
    assert csv_answer.headers["content-type"].startswith("text/csv")
    lines = csv_answer.text.strip().splitlines()
    assert lines[0].startswith("event_id,camera") and len(lines) == 61 and all(",hall," in x for x in lines[1:])
    with raw_db(svc.ctx.data_dir, read_only=True) as db:
        exports = db.execute("SELECT justification FROM audit_entries WHERE action = 'events.export'").fetchall()
    assert [tuple(r) for r in exports] == [(why,)]


def test_audit_log_newest_first_with_older_pages(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    auditor, _ = svc.users.login("auditor", PASSWORD)
    for _ in range(120):
        svc.records.events(auditor, limit=1)  # each look is a ledger entry
    _sign_in(client, "auditor")
    with svc.uow.read() as r:
        size = r.ledger.size()
    page = client.get("/audit").text
    seqs = [int(s) for s in re.findall(r"<tr><td>(\d+)</td><td>\d{4}-", page.split('id="ledger"', 1)[1])]
    assert seqs[0] == size and seqs == sorted(seqs, reverse=True) and len(seqs) == 100
    older = client.get(f"/audit?before={seqs[-1]}").text
    rest = [int(s) for s in re.findall(r"<tr><td>(\d+)</td><td>\d{4}-", older.split('id="ledger"', 1)[1])]
    assert rest[0] == seqs[-1] - 1 and rest[-1] == 1


def test_transparency_page_takes_a_period_and_downloads_a_pdf(site: tuple[Services, TestClient]) -> None:
    _, client = site
    _sign_in(client, "auditor")
    page = client.get("/report?from=2026-01-01&to=2026-01-31").text
    assert "Period: 2026-01-01 to 2026-01-31 (UTC)" in page and _menu(page)
    pdf = client.get("/api/reports/transparency?from=2026-01-01&to=2026-01-31&format=pdf&download=true")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert 'filename="kuzet-transparency-2026-01-01-2026-01-31.pdf"' in pdf.headers["content-disposition"]
    assert client.get("/report?from=2026-02-01&to=9999-12-31").status_code == 422
    assert client.get("/api/reports/transparency?from=2026-02-01&to=9999-12-31").status_code == 422
    backwards = client.get("/report?from=2026-02-01&to=2026-01-01")
    assert backwards.status_code == 400 and "before" in backwards.text


def test_system_page_shows_store_ledger_and_each_cameras_rates(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "operator")
    idle = client.get("/system").text
    assert "SQLite" in idle or "PostgreSQL" in idle
    assert "not running" in idle and "never verified" in idle
    now = time.time()
    gate = CameraStatus("gate-1", state="up", node="node-a", frames_decoded=1000, frames_analysed=400,
                        frames_dropped=50, frames_gated=120, frames_searched=230, frames_regions=30,
                        frames_followed=17, queue_depth=2)  # fmt: skip
    for _ in range(19):
        gate.observe_latency(0.04)
    gate.observe_latency(3.0)
    write_status(
        svc.ctx.data_dir, ServiceStatus(pid=7, started=now - 100, updated=now, state="running", cameras=[gate])
    )
    row = client.get("/system").text.split('id="health-gate-1"', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[1:5] == ["node-a", "10.0", "4.0", "50 (5.0%)"]  # decoded/s, analysed/s over 100 s; drops
    assert cells[5:7] == ["120", "230"]  # frames the motion gate skipped; frames where the search found no face
    assert cells[7:9] == ["30", "17"]  # frames seen only where they moved; only as finely as the tracks needed
    assert "ms" in row and "/ 50 ms" in row  # 19 of 20 frames under 50 ms: p95 is 50 ms
    _sign_in(client, "requester")
    assert client.get("/system").status_code == 403


def test_camera_wall_shows_pictures_of_cameras_that_are_up_and_why_others_are_not(
    site: tuple[Services, TestClient],
) -> None:
    import cv2
    import numpy as np

    from kuzet.store.status import write_wall_frame

    svc, client = site
    now = time.time()
    cams = [CameraStatus("gate-1", state="up", frames_analysed=5),
            CameraStatus("gate-2", state="failed", reason="wrong credentials")]  # fmt: skip
    write_status(svc.ctx.data_dir, ServiceStatus(pid=1, started=now - 5, updated=now, state="running", cameras=cams))
    encoded, jpeg = cv2.imencode(".jpg", np.full((90, 160, 3), 128, np.uint8))
    assert encoded
    write_wall_frame(svc.ctx.data_dir, "gate-1", jpeg.tobytes())
    _sign_in(client, "operator")
    wall = client.get("/wall").text
    tile1 = wall.split('id="tile-gate-1"', 1)[1].split("</section>", 1)[0]
    tile2 = wall.split('id="tile-gate-2"', 1)[1].split("</section>", 1)[0]
    assert 'src="/api/cameras/gate-1/snapshot"' in tile1 and "<img" not in tile2 and "wrong credentials" in tile2
    for _ in range(3):  # the wall refreshes every few seconds: one ledger entry, not one per picture
        picture = client.get("/api/cameras/gate-1/snapshot")
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        assert picture.headers["cache-control"] == "no-store" and picture.content == jpeg.tobytes()
    with raw_db(svc.ctx.data_dir, read_only=True) as db:
        views = db.execute("SELECT actor FROM audit_entries WHERE action = 'camera.view'").fetchall()
    assert [tuple(v) for v in views] == [("operator",)]
    assert client.get("/api/cameras/gate-2/snapshot").status_code == 404  # down: no picture
    assert client.get("/api/cameras/..%2Fstatus/snapshot").status_code in (404, 422)
    _sign_in(client, "requester")
    assert client.get("/api/cameras/gate-1/snapshot").status_code == 403


def test_people_page_shows_each_persons_recognitions(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _store_events(svc, 6)  # three events on each of two cameras, all of Ann
    _sign_in(client, "operator")
    page = client.get("/people").text
    assert 'href="/events?identity=Ann">6, latest' in page
    _sign_in(client, "approver")  # approvers see enrolments, not where people were seen
    assert "recognitions" not in client.get("/people").text


def test_an_administrator_adds_users_from_the_page_and_nobody_else_can(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "admin")
    csrf = client.cookies["kuzet_csrf"]
    added = client.post(
        "/users", data={"name": "dana", "password": "a long enough password", "roles": ["reviewer", "auditor"],
                        "csrf_token": csrf},
    )  # fmt: skip
    assert "added dana (auditor, reviewer)" in client.get(added.headers["location"]).text
    for bad, fragment in (
        ({"name": "eve", "password": "short", "roles": ["operator"]}, "password"),
        ({"name": "eve", "password": "a long enough password", "roles": ["root"]}, "unknown role"),
        ({"name": "eve", "password": "a long enough password"}, "(none given)"),
        ({"name": "dana", "password": "a long enough password", "roles": ["operator"]}, "already exists"),
    ):
        refused = client.post("/users", data={**bad, "csrf_token": csrf})
        assert fragment in client.get(refused.headers["location"]).text
    no_csrf = {"name": "x1", "password": "a long enough password", "roles": ["admin"]}
    assert client.post("/users", data=no_csrf).status_code == 303  # to the sign-in page, nothing done
    assert "x1" not in {u.name for u in svc.users.list(svc.users.login("admin", PASSWORD)[0])}  # no CSRF: nothing
    _sign_in(client, "auditor")
    forged = client.post("/users", data={"name": "mallory", "password": "a long enough password", "roles": ["admin"],
                                         "csrf_token": client.cookies["kuzet_csrf"]})  # fmt: skip
    assert forged.status_code == 303 and "may not add users" in client.get(forged.headers["location"]).text
    assert "mallory" not in {u.name for u in svc.users.list(svc.users.login("admin", PASSWORD)[0])}


def test_event_detail_page(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _store_events(svc, 2)
    _sign_in(client, "reviewer")
    listing = client.get("/events").text
    first = re.findall(r'<a href="/events/(\d+)">', listing)[0]
    page = client.get(f"/events/{first}")
    assert page.status_code == 200 and f"/api/media/event/{first}" in page.text and "Ann" in page.text
    assert f'action="/api/media/event/{first}/unredacted"' in page.text  # reviewers may, with a justification
    with raw_db(svc.ctx.data_dir, read_only=True) as db:
        seen = db.execute("SELECT COUNT(*) FROM audit_entries WHERE object = ?", (f"event:{first}",)).fetchone()[0]
    assert seen == 1
    assert client.get("/events/999999").status_code == 404
    _sign_in(client, "operator")
    assert "unredacted" not in client.get(f"/events/{first}").text


def test_review_filters_by_camera_person_and_time_and_pages(site: tuple[Services, TestClient]) -> None:
    from kuzet.governance.watchlists import WatchlistRequest
    from kuzet.store.models import AlertRow

    svc, client = site
    _store_events(svc, 2)
    requester, approver = svc.users.login("requester", PASSWORD)[0], svc.users.login("approver", PASSWORD)[0]
    req = WatchlistRequest("stolen", "blue Nexia", "stolen-vehicle", "stolen-vehicle-report", "KUSP-9", "police",
                           utc_today() + timedelta(days=9))  # fmt: skip
    entry = svc.watchlists.request(requester, req, plate="555XYZ02")
    svc.watchlists.approve(approver, entry, reason="report KUSP-9 checked")
    with svc.uow.tx() as w:  # alerts as cameras raise them
        run = w.session.execute(text("SELECT MIN(id) FROM analysis_runs")).scalar_one()
        for i in range(55):
            w.session.add(AlertRow(
                run_id=run, entry_id=entry, camera="gate" if i % 5 else "hall", score=1.0, threshold=1.0, start=0.0,
                end=1.0, track_id=i, snapshots="[]", source="src", status="pending", required_reviews=1,
                created_at=svc.ctx.now(),
            ))  # fmt: skip
    _sign_in(client, "reviewer")
    first = client.get("/review").text
    assert first.count('<article class="alert') == 50 and 'rel="next"' in first
    hall = client.get("/review?camera=hall").text
    assert hall.count('<article class="alert') == 11 and "gate," not in hall
    nexia = client.get("/review?subject=nexia").text  # part of the name, any case
    assert nexia.count('<article class="alert') == 50
    assert "No alerts." in client.get("/review?subject=nobody").text
    assert "No alerts." in client.get(f"/review?from={(utc_today() + timedelta(days=2)).isoformat()}").text
    assert "No alerts." in client.get("/review?status=decided").text

    # severity comes from the entry's category in the policy: stolen vehicles are `medium`
    medium = client.get("/review?severity=medium").text
    assert medium.count('<article class="alert') == 50 and 'class="severity severity-medium"' in medium
    assert "severity=medium" in medium.split('rel="next"', 1)[0].rsplit("href=", 1)[1]  # paging keeps the filter
    assert "No alerts." in client.get("/review?severity=high").text
    assert client.get("/review?severity=urgent").text.count('<article class="alert') == 50  # an unknown one: all
    api = client.get("/api/alerts", params={"severity": "medium", "camera": "hall", "limit": 5})
    assert [a["severity"] for a in api.json()] == ["medium"] * 5 and {a["camera"] for a in api.json()} == {"hall"}
    assert client.get("/api/alerts", params={"severity": "urgent"}).status_code == 422
    with svc.uow.tx() as w:  # a category the policy no longer lists: its hits are not played down
        w.session.execute(text("UPDATE watchlist_entries SET category = 'retired' WHERE id = :id"), {"id": entry})
    assert client.get("/review?severity=high").text.count('<article class="alert') == 50
    assert "No alerts." in client.get("/review?severity=medium").text


def test_alerts_show_the_false_match_rate_their_threshold_comes_from(site: tuple[Services, TestClient]) -> None:
    from kuzet.governance.watchlists import WatchlistRequest
    from kuzet.store.models import AlertRow

    svc, client = site
    _store_events(svc, 1)
    policy = svc.ctx.policy
    derived = policy.threshold("wanted-person")
    assert policy.false_match_rate("wanted-person") == 0.001
    requester, approver = svc.users.login("requester", PASSWORD)[0], svc.users.login("approver", PASSWORD)[0]
    req = WatchlistRequest("stolen", "blue Nexia", "stolen-vehicle", "stolen-vehicle-report", "KUSP-9", "police",
                           utc_today() + timedelta(days=9))  # fmt: skip
    entry = svc.watchlists.request(requester, req, plate="555XYZ02")
    svc.watchlists.approve(approver, entry, reason="report KUSP-9 checked")
    with svc.uow.tx() as w:  # a face category's hits: one at the derived threshold, one under an earlier policy
        w.session.execute(text("UPDATE watchlist_entries SET category = 'wanted-person' WHERE id = :id"), {"id": entry})
        run = w.session.execute(text("SELECT MIN(id) FROM analysis_runs")).scalar_one()
        for i, threshold in enumerate((0.92, derived)):
            w.session.add(AlertRow(
                run_id=run, entry_id=entry, camera="gate", score=0.95, threshold=threshold, start=0.0, end=1.0,
                track_id=i, snapshots="[]", source="src", status="pending", required_reviews=2,
                created_at=svc.ctx.now(),
            ))  # fmt: skip
    _sign_in(client, "reviewer")
    page = client.get("/review").text
    assert page.count("declared false-match rate") == 1 and '<span class="fmr">0.001</span>' in page
    assert f"threshold {derived:.3f}, declared false-match rate" in page
    api = client.get("/api/alerts").json()
    assert [(a["threshold"], a["false_match_rate"]) for a in api] == [(derived, 0.001), (0.92, None)]
    assert "заявленная доля ложных совпадений" in client.get("/review", headers={"Accept-Language": "ru"}).text
    _sign_in(client, "requester")
    listed = client.get("/watchlists").text
    assert f"wanted-person (declared false-match rate 0.001, threshold {derived:.3f})" in listed

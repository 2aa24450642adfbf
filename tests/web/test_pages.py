"""The dashboard's pages as each role sees them: the menu, refusals and missing pages as pages, every camera's state.

Served by the real application (`kuzet.web.app.create_app`) over a real data directory, through Starlette's test
client; the same pages are walked in Chromium by `test_browser.py`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kuzet.config.models import KuzetConfig
from kuzet.core.types import ROLES
from kuzet.services.container import Services, build_services
from kuzet.store.status import CameraStatus, ServiceStatus, write_status
from kuzet.web.app import create_app
from kuzet.web.chrome import MENU
from tests.conftest import PASSWORD
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store
CONFIG = {"cameras": [{"name": "gate-1", "source": "rtsp://10.0.0.5/gate", "purpose": "staff access"}]}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Services, TestClient]]:
    svc = build_services(tmp_path / "data", KuzetConfig.model_validate(CONFIG))
    admin = svc.users.init_admin("admin", PASSWORD)
    for role in ROLES:
        if role != "admin":
            svc.users.add(admin, role, PASSWORD, [role])
    with TestClient(create_app(svc), follow_redirects=False) as client:
        yield svc, client
    svc.close()


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
    assert anonymous.status_code == 404 and 'href="/login"' in anonymous.text and "<nav" not in anonymous.text
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

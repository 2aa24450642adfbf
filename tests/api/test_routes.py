"""The whole route table, walked for every role: who may do what, and nobody without signing in."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kuzet.app import Kuzet
from kuzet.config.models import RunConfig
from kuzet.core.types import ROLES
from tests.conftest import enrol

pytestmark = pytest.mark.store

ALL = set(ROLES)
EVENT_VIEWERS = {"admin", "operator", "reviewer", "auditor"}
AUDIT = {"auditor", "admin"}

# (method, path) -> roles that may call it; None means public.
EXPECTED: dict[tuple[str, str], set[str] | None] = {
    ("GET", "/api/health"): None,
    ("POST", "/api/auth/login"): None,
    ("POST", "/api/auth/logout"): ALL,
    ("GET", "/api/auth/me"): ALL,
    ("GET", "/api/users"): {"admin", "auditor"},
    ("POST", "/api/users"): {"admin"},
    ("GET", "/api/cameras"): EVENT_VIEWERS,
    ("GET", "/api/cameras/status"): EVENT_VIEWERS,  # 404 until `kuzet run` has run
    ("GET", "/api/cameras/{name}/replay"): EVENT_VIEWERS,  # walked with a camera that has nothing to show: 404
    ("GET", "/api/cameras/{name}/snapshot"): EVENT_VIEWERS,  # 404: the camera has no live picture
    ("GET", "/api/cameras/{name}/recordings"): EVENT_VIEWERS,  # an empty list
    ("GET", "/api/cameras/{name}/recordings/{segment}"): EVENT_VIEWERS,  # 404: the camera has no such recording
    ("GET", "/api/events"): EVENT_VIEWERS,
    ("GET", "/api/map"): EVENT_VIEWERS,
    ("GET", "/api/map/{kind}"): EVENT_VIEWERS,  # 404: the config names no map
    ("GET", "/api/traffic/{kind}"): EVENT_VIEWERS,  # walked with kind=violations
    ("GET", "/api/traffic/counts"): EVENT_VIEWERS,
    ("GET", "/api/traffic/series"): EVENT_VIEWERS,
    ("POST", "/api/traffic/violations/{violation_id}/evidence"): EVENT_VIEWERS,  # 404: there is no violation 1
    ("GET", "/api/alerts"): {"reviewer", "auditor"},
    ("POST", "/api/alerts/{alert_id}/review"): {"reviewer"},
    ("GET", "/api/alerts/marks"): {"reviewer", "approver", "auditor"},
    ("POST", "/api/alerts/{alert_id}/mark"): {"reviewer"},
    ("GET", "/api/watchlists"): {"requester", "approver", "reviewer", "auditor", "admin"},
    ("POST", "/api/watchlists"): {"requester"},
    ("POST", "/api/watchlists/{entry_id}/approve"): {"approver"},
    ("POST", "/api/watchlists/{entry_id}/reject"): {"approver"},
    ("POST", "/api/watchlists/{entry_id}/withdraw"): {"requester", "approver"},
    ("GET", "/api/people"): {"admin", "operator", "approver", "auditor"},
    ("POST", "/api/people"): {"admin", "operator"},
    ("POST", "/api/people/{person_id}/approve"): {"approver"},
    ("POST", "/api/people/{person_id}/reject"): {"approver"},
    ("GET", "/api/media/{kind}/{object_id}"): EVENT_VIEWERS,  # walked with kind=event
    ("GET", "/api/media/{kind}/{object_id}/unredacted"): {"reviewer", "auditor"},
    ("GET", "/api/audit/log"): AUDIT,
    ("POST", "/api/audit/verify"): AUDIT,
    ("GET", "/api/audit/proof/{seq}"): AUDIT,
    ("GET", "/api/audit/checkpoints"): AUDIT,
    ("POST", "/api/audit/checkpoint"): AUDIT,
    ("GET", "/api/audit/checkpoint/latest"): {"auditor"},
    ("GET", "/api/audit/consistency"): {"auditor"},
    ("GET", "/api/audit/key-rotations"): AUDIT,
    ("GET", "/api/reports/transparency"): AUDIT,
    ("GET", "/api/stream"): ALL,
}


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """Every API operation, from the app's own OpenAPI document (FastAPI builds it from the route table)."""
    paths = client.app.openapi()["paths"]
    return sorted((m.upper(), p) for p, ops in paths.items() if p.startswith("/api/") for m in ops)


def _call(client: TestClient, method: str, path: str, token: str | None, photo: bytes) -> int:
    url = (
        path.replace("/api/traffic/{kind}", "/api/traffic/violations")
        .replace("/api/map/{kind}", "/api/map/geojson")
        .replace("{alert_id}", "1")
        .replace("{violation_id}", "1")
        .replace("{entry_id}", "1")
        .replace("{person_id}", "1")
        .replace("{kind}", "event")
        .replace("{object_id}", "1")
        .replace("{seq}", "1")
        .replace("{segment}", "2026/01/01/000000-0a1b.mp4")
        .replace("{name}", "no-such-camera")
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params: dict[str, str] = {}
    kwargs: dict[str, object] = {}
    if path.endswith("/unredacted"):
        params["justification"] = "route table walk"
    if path == "/api/reports/transparency":
        params.update({"from": "2026-01-01", "to": "2026-01-31"})
    if path == "/api/stream":
        params["once"] = "1"
    if path == "/api/audit/consistency":
        params.update({"first": "1", "second": "1"})
    if path == "/api/alerts/{alert_id}/review":
        kwargs["json"] = {"decision": "confirm", "reason": "walk"}
    elif path == "/api/alerts/{alert_id}/mark":
        kwargs["json"] = {"decision": "approve", "reason": "walk"}
    elif path.endswith("/evidence"):
        kwargs["json"] = {"justification": "route table walk"}
    elif path.endswith(("/approve", "/reject", "/withdraw")):
        kwargs["json"] = {"reason": "route table walk"}
    elif path == "/api/users":
        kwargs["json"] = {"name": f"u{abs(hash(token)) % 10**6}", "password": "long enough pw", "roles": ["operator"]}
    elif path == "/api/auth/login":
        kwargs["json"] = {"name": "nobody", "password": "x"}
    elif path == "/api/watchlists" and method == "POST":
        kwargs["data"] = {
            "list_name": "wanted",
            "name": "Person",
            "category": "wanted-person",
            "legal_basis": "court-order",
            "reference": "1/2026",
            "authority": "court",
            "expires": "2099-01-01",
        }
        kwargs["files"] = {"photo": ("p.png", photo, "image/png")}
    elif path == "/api/people" and method == "POST":
        kwargs["data"] = {"name": "Staff", "consent": "signed form 1"}
        kwargs["files"] = [("photos", ("p.png", photo, "image/png"))]
    response = client.request(method, url, headers=headers, params=params, **kwargs)
    return response.status_code


def test_every_route_is_in_the_table(api: tuple[Kuzet, TestClient, dict[str, str]]) -> None:
    _, client, _ = api
    assert set(_routes(client)) == set(EXPECTED)


def test_each_role_may_do_exactly_what_the_table_says(
    api: tuple[Kuzet, TestClient, dict[str, str]], faces_dir: Path
) -> None:
    svc, client, tokens = api
    photo = (faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png").read_bytes()
    for method, path in _routes(client):
        allowed = EXPECTED[(method, path)]
        if allowed is None:
            continue
        assert _call(client, method, path, None, photo) == 401, f"{method} {path} without a token"
        for role in ROLES:
            if method == "POST" and path == "/api/auth/logout":
                continue  # would end the session used by the rest of the walk
            status = _call(client, method, path, tokens[role], photo)
            if role in allowed:
                assert status not in (401, 403), f"{role} should be allowed {method} {path}, got {status}"
            else:
                assert status == 403, f"{role} should be refused {method} {path}, got {status}"
    # Every refusal left an audit trail? Denials happen before the action; the ledger still verifies.
    assert svc.audit_verify(None).ok


def test_public_routes_and_error_bodies(api: tuple[Kuzet, TestClient, dict[str, str]]) -> None:
    _, client, tokens = api
    assert client.get("/api/health").json() == {"status": "ok"}
    body = client.get("/api/events").json()
    assert body["error"]["type"] == "AuthError" and body["error"]["hint"]
    bad = client.get("/api/events", params={"limit": 0}, headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert bad.status_code == 422 and "limit" in bad.json()["error"]["message"]
    missing = client.get("/api/media/event/999", headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundError"


def test_cookie_sessions_need_csrf_and_logins_are_throttled(api: tuple[Kuzet, TestClient, dict[str, str]]) -> None:
    svc, client, _ = api
    from tests.conftest import PASSWORD

    r = client.post("/api/auth/login", json={"name": "auditor", "password": PASSWORD})
    assert r.status_code == 200 and client.cookies.get("kuzet_session")
    assert client.post("/api/audit/verify").status_code == 401  # cookie without the CSRF header
    ok = client.post("/api/audit/verify", headers={"x-csrf-token": client.cookies["kuzet_csrf"]})
    assert ok.status_code == 200 and ok.json()["ok"] is True
    for _ in range(5):
        assert client.post("/api/auth/login", json={"name": "operator", "password": "wrong"}).status_code == 401
    locked = client.post("/api/auth/login", json={"name": "operator", "password": PASSWORD})
    assert locked.status_code == 429  # even the right password, while locked
    actions = [e.action for e in svc.audit_log(svc.authenticate(svc.login("auditor", PASSWORD)[1]))]
    assert actions.count("auth.login_failed") >= 5 and "auth.locked" in actions


def test_pagination_and_filters(api: tuple[Kuzet, TestClient, dict[str, str]], faces_dir: Path) -> None:
    svc, client, tokens = api
    op = svc.authenticate(tokens["operator"])
    examples = faces_dir / "face_recognition_examples"
    enrol(svc, op, "Barack Obama", [examples / "knn_train_obama_obama.jpg"])
    for i, name in enumerate(["knn_test_obama1.jpg", "test_obama3.jpg", "obama-480p.jpg"]):
        svc.analyze(op, str(examples / name), camera=f"cam-{i % 2}")
    h = {"Authorization": f"Bearer {tokens['operator']}"}
    page1 = client.get("/api/events", params={"limit": 2}, headers=h).json()
    page2 = client.get("/api/events", params={"limit": 2, "offset": page1["next_offset"]}, headers=h).json()
    assert len(page1["items"]) == 2 and len(page2["items"]) == 1 and page2["next_offset"] is None
    ids = [e["id"] for e in page1["items"] + page2["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    cam0 = client.get("/api/events", params={"camera": "cam-0"}, headers=h).json()["items"]
    assert {e["camera"] for e in cam0} == {"cam-0"} and len(cam0) == 2
    image = client.get(page1["items"][0]["snapshot_url"], headers=h)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"


def test_metrics_need_the_prometheus_token_or_an_admin(
    api: tuple[Kuzet, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, client, tokens = api
    secrets = svc.data_dir / "secrets.yaml"
    secrets.write_text('prom: "scrape-token-1"\n', encoding="utf-8")
    secrets.chmod(0o600)
    monkeypatch.setattr(
        svc.ctx, "config", svc.config.model_copy(update={"run": RunConfig(metrics_token="secret:prom")})
    )
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {tokens['operator']}"}).status_code == 403
    for token in ("scrape-token-1", tokens["admin"], tokens["auditor"]):
        response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE kuzet_frames_analysed_total counter" in response.text

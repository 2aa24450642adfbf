"""Security headers on every response: answers, refusals before sign-in, and the body guard's own refusals."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from httpx import Response

from kuzet.api.security import SECURITY_HEADERS, SecurityHeaders
from kuzet.app import Kuzet


def _secured(response: Response) -> bool:
    return all(response.headers.get(name) == value for name, value in SECURITY_HEADERS)


def test_every_answer_and_refusal_carries_the_security_headers(api: tuple[Kuzet, TestClient, dict[str, str]]) -> None:
    _, client, tokens = api
    assert _secured(client.get("/api/health"))
    ok = client.get("/api/events", headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert ok.status_code == 200 and _secured(ok)
    refused = client.get("/api/events")  # no sign-in: refused by the route's dependency
    assert refused.status_code == 401 and _secured(refused)
    guarded = client.post("/api/people", content=b"x" * 10)  # refused by the body guard before the body is read
    assert guarded.status_code == 401 and _secured(guarded)
    missing = client.get("/api/no-such-route", headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert missing.status_code == 404 and _secured(missing)


def test_a_response_keeps_a_security_header_it_set_itself() -> None:
    app = FastAPI()

    @app.get("/framed")
    def framed() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    app.add_middleware(SecurityHeaders)
    response = TestClient(app).get("/framed")
    assert response.headers["x-frame-options"] == "SAMEORIGIN"  # its own, not overwritten
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]  # and not doubled
    assert response.headers["content-security-policy"] == dict(SECURITY_HEADERS)["Content-Security-Policy"]

"""Security headers on every response: answers, refusals before sign-in, and the body guard's own refusals."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from httpx import Response

from kuzet.api.security import SECURITY_HEADERS, SecurityHeaders
from kuzet.app import Kuzet
from kuzet.web.app import create_app


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


def test_an_unexpected_failure_is_a_500_with_the_headers_and_no_details(
    api: tuple[Kuzet, TestClient, dict[str, str]],
) -> None:
    # Starlette answers unhandled exceptions outside the middleware added with add_middleware: the headers must
    # still be there (this 500 once went out without them), and the client learns nothing of the failure itself.
    svc, _, tokens = api
    app = create_app(svc.services)  # the dashboard over the API: people get a page, programs the error body

    def broken() -> None:
        raise RuntimeError("db password hunter2 in a traceback")

    app.add_api_route("/api/broken", broken)
    app.add_api_route("/broken", broken)
    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/api/broken", "/broken"):
        response = client.get(path, headers={"Authorization": f"Bearer {tokens['operator']}"})
        assert response.status_code == 500 and _secured(response), path
        assert "hunter2" not in response.text and "RuntimeError" not in response.text
    api_body = client.get("/api/broken").json()["error"]
    assert api_body["type"] == "InternalError" and "server's log" in api_body["hint"]
    page = client.get("/broken", headers={"Accept-Language": "ru"})
    assert page.headers["content-type"].startswith("text/html") and "на сервере что-то пошло не так" in page.text

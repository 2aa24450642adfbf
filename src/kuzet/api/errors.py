"""One error body for every failure: {"error": {"type", "message", "hint"}}, with the HTTP status it maps to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kuzet.core.errors import (
    AuthError,
    BusyError,
    InputError,
    KuzetError,
    NotFoundError,
    PermissionDenied,
    PolicyRefusal,
    StoreError,
    TooManyAttempts,
)
from kuzet.core.i18n import Phrase

STATUS: list[tuple[type[KuzetError], int]] = [
    (TooManyAttempts, 429),
    (StoreError, 503),
    (BusyError, 503),
    (AuthError, 401),
    (PermissionDenied, 403),
    (NotFoundError, 404),
    (PolicyRefusal, 409),
    (InputError, 422),
]
"""Kuzet error -> HTTP status, most specific first; any other kuzet error is a 400."""
HINT = "see /docs for the request format"
ErrorPage = Callable[[Request, int, str, str], Awaitable[Response]]
"""(request, status, message, hint) -> a page for a person: what `kuzet.web` installs as `app.state.error_page`."""


def for_machine(request: Request) -> bool:
    """Whether a request is a program's (the API, metrics, the OpenAPI document), not a person's in a browser."""
    path = request.url.path
    return path.startswith("/api/") or path in ("/metrics", "/openapi.json")


async def _answer(
    request: Request, status: int, body: dict[str, dict[str, str]], headers: Mapping[str, str] | None
) -> Response:
    """The error body for programs; the application's error page (when it has one) for a person in a browser."""
    page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if page is not None and not for_machine(request):
        return await page(request, status, body["error"]["message"], body["error"]["hint"])
    return JSONResponse(body, status_code=status, headers=headers)


def error_status(exc: KuzetError) -> int:
    """HTTP status for a kuzet error."""
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def _body(kind: str, message: str, hint: str) -> dict[str, dict[str, str]]:
    return {"error": {"type": kind, "message": message, "hint": hint}}


def install(app: FastAPI) -> None:
    """Answer every kuzet error, HTTP error and validation error with the one error body."""

    @app.exception_handler(KuzetError)
    async def kuzet_error(request: Request, exc: KuzetError) -> Response:
        status = error_status(exc)
        if not for_machine(request) and isinstance(exc, AuthError):  # a person in a browser (the dashboard): to sign-in
            return RedirectResponse("/login", status_code=303)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, BusyError):
            headers = {"Retry-After": "30"}
        return await _answer(request, status, _body(type(exc).__name__, exc.message, exc.hint), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = "PayloadTooLarge" if exc.status_code == 413 else "HTTPError"
        return await _answer(request, exc.status_code, _body(kind, str(exc.detail), HINT), exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette raises the exception again after this answer and the server logs its traceback; the client
        # learns nothing of it.
        said = Phrase("something went wrong on the server")
        hint = Phrase("try again; if it goes on, tell the administrator (the server's log has the details)")
        body = _body("InternalError", said, hint)
        try:
            return await _answer(request, 500, body, None)
        except Exception:  # the page for people failed too (e.g. the database is down): the plain body
            return JSONResponse(body, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        said = Phrase("the request's values are not valid: {problems}", problems=problems)  # shown translated on pages
        return await _answer(request, 422, _body("ValidationError", said, HINT), None)

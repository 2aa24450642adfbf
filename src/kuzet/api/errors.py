"""One error body for every failure: {"error": {"type", "message", "hint"}}, with the HTTP status it maps to."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kuzet.core.errors import (
    AuthError,
    InputError,
    KuzetError,
    NotFoundError,
    PermissionDenied,
    PolicyRefusal,
    StoreError,
    TooManyAttempts,
)

STATUS: list[tuple[type[KuzetError], int]] = [
    (TooManyAttempts, 429),
    (StoreError, 503),
    (AuthError, 401),
    (PermissionDenied, 403),
    (NotFoundError, 404),
    (PolicyRefusal, 409),
    (InputError, 422),
]
"""Kuzet error -> HTTP status, most specific first; any other kuzet error is a 400."""
HINT = "see /docs for the request format"


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
        machine = request.url.path.startswith("/api/") or request.url.path == "/metrics"
        if not machine and isinstance(exc, AuthError):  # a person in a browser (the dashboard): to sign-in
            return RedirectResponse("/login", status_code=303)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(_body(type(exc).__name__, exc.message, exc.hint), status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = "PayloadTooLarge" if exc.status_code == 413 else "HTTPError"
        return JSONResponse(_body(kind, str(exc.detail), HINT), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(_body("ValidationError", problems, HINT), status_code=422)

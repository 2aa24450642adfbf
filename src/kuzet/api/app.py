"""The FastAPI application factory: API routers, the dashboard, error bodies, security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from kuzet.api.routes import ROUTERS, error_status
from kuzet.api.security import BodyGuard
from kuzet.app import Kuzet
from kuzet.core.errors import AuthError, KuzetError


def create_app(svc: Kuzet, *, secure_cookies: bool | None = None) -> FastAPI:
    """The web application over one `Kuzet` (shared by every request).

    `secure_cookies` overrides the config's `api.secure_cookies` (set it when kuzet is reached over HTTPS).
    """
    from kuzet.web.views import router as web_router

    app = FastAPI(
        title="kuzet",
        version="0.1.0",
        description="Camera analytics with oversight built in. Every route except /api/health needs a signed-in "
        "user: a bearer token from POST /api/auth/login, or the browser's session cookie with the X-CSRF-Token "
        "header on unsafe methods.",
    )
    app.state.kuzet = svc
    app.state.secure_cookies = svc.config.api.secure_cookies if secure_cookies is None else secure_cookies
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(web_router)
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).resolve().parent.parent / "web" / "static"), name="static"
    )

    @app.exception_handler(KuzetError)
    async def kuzet_error(request: Request, exc: KuzetError) -> Response:
        status = error_status(exc)
        machine = request.url.path.startswith("/api/") or request.url.path == "/metrics"
        if not machine and isinstance(exc, AuthError):  # a person in a browser: to the sign-in page
            return RedirectResponse("/login", status_code=303)
        body = {"error": {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = "PayloadTooLarge" if exc.status_code == 413 else "HTTPError"
        body = {"error": {"type": kind, "message": str(exc.detail), "hint": "see /docs for the request format"}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        body = {"error": {"type": "ValidationError", "message": problems, "hint": "see /docs for the request format"}}
        return JSONResponse(body, status_code=422)

    app.add_middleware(BodyGuard, authenticate=svc.authenticate, max_bytes=svc.config.api.max_body_mb * 2**20)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        )
        return response

    return app

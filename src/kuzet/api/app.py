"""The FastAPI application factory: the REST routers, error bodies, the body guard, security headers.

The dashboard (`kuzet.web`) is built on top of this application by `kuzet.web.app.create_app`; the API knows
nothing of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from kuzet.api import docs, errors
from kuzet.api.routers import ROUTERS
from kuzet.api.security import BodyGuard
from kuzet.services.container import Services

CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
DESCRIPTION = (
    "Camera analytics with oversight built in. Every route except /api/health needs a signed-in "
    "user: a bearer token from POST /api/auth/login, or the browser's session cookie with the X-CSRF-Token "
    "header on unsafe methods."
)


def create_app(services: Services, *, secure_cookies: bool | None = None) -> FastAPI:
    """The REST API over one `Services` (shared by every request).

    `secure_cookies` overrides the config's `api.secure_cookies` (set it when kuzet is reached over HTTPS).
    """
    config = services.ctx.config
    app = FastAPI(title="kuzet", version="0.1.0", description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.secure_cookies = config.api.secure_cookies if secure_cookies is None else secure_cookies
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    docs.install(app)
    app.add_middleware(BodyGuard, authenticate=services.users.authenticate, max_bytes=config.api.max_body_mb * 2**20)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return app

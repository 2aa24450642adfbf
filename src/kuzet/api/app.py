"""The FastAPI application factory: the REST routers, error bodies, the body guard, security headers.

The dashboard (`kuzet.web`) is built on top of this application by `kuzet.web.app.create_app`; the API knows
nothing of it.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp

from kuzet.api import docs, errors
from kuzet.api.routers import ROUTERS
from kuzet.api.security import AnswerAfterAudit, BodyGuard, SecurityHeaders
from kuzet.services.container import Services

DESCRIPTION = (
    "Camera analytics with oversight built in. Every route except /api/health needs a signed-in "
    "user: a bearer token from POST /api/auth/login, or the browser's session cookie with the X-CSRF-Token "
    "header on unsafe methods."
)


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
"""FastAPI's own OpenTelemetry, off. It switches itself on when the process has a tracer, meter or logger provider
(an `opentelemetry-instrument` wrapper) or the environment asks for it (`FASTAPI_OTEL_AUTO_CONFIGURE`), and then
exports every request's URL, query included (`/api/events?identity=NAME`), and the client's address to a collector:
a record of who looked up whom that the ledger would not see. kuzet's own figures are on `/metrics`."""


class KuzetAPI(FastAPI):
    """FastAPI with the security headers outside every layer, Starlette's error handling included.

    A middleware added with `add_middleware` sits inside `ServerErrorMiddleware`, so the 500 answer to an unexpected
    exception would go out without the headers, or before its request's audit entries are committed; wrapping the
    whole stack holds that answer too.
    """

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack (error handling, the added middleware, the routes) inside `AnswerAfterAudit`.

        Both wrap the whole stack: an error answer, a 500 too, waits for its request's audit entries and carries the
        security headers.
        """
        return SecurityHeaders(AnswerAfterAudit(super().build_middleware_stack()))


def create_app(services: Services, *, secure_cookies: bool | None = None) -> FastAPI:
    """The REST API over one `Services` (shared by every request).

    `secure_cookies` overrides the config's `api.secure_cookies` (set it when kuzet is reached over HTTPS).
    """
    config = services.ctx.config
    app = KuzetAPI(
        title="kuzet",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.state.services = services
    app.state.secure_cookies = config.api.secure_cookies if secure_cookies is None else secure_cookies
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    docs.install(app)
    app.add_middleware(BodyGuard, authenticate=services.users.authenticate, max_bytes=config.api.max_body_mb * 2**20)
    return app

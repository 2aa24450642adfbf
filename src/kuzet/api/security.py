"""Authentication for the API and the dashboard: bearer tokens, session cookies with CSRF, client addresses."""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Callable
from functools import lru_cache

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kuzet.core.errors import AuthError, KuzetError
from kuzet.core.types import User
from kuzet.services.group_commit import DEFERRED, Deferred

SESSION_COOKIE = "kuzet_session"
CSRF_COOKIE = "kuzet_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", CSP),
)
"""Set on every response that does not set them itself."""


class SecurityHeaders:
    """ASGI middleware: `SECURITY_HEADERS` on every HTTP response, unless the response set its own.

    A plain ASGI middleware rather than Starlette's `BaseHTTPMiddleware`, which runs every response through a task
    and a stream of its own: on `GET /api/health` that cost about a third of the server's time per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to its response as it starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # optional in ASGI
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


class AnswerAfterAudit:
    """ASGI middleware: no answer starts before every ledger entry its request recorded is committed.

    A request's audit entries are queued for the group commit while its thread goes on (`group_commit.Deferred`):
    the thread is free for the next request instead of waiting out a commit. The answer is held here until they are
    durable; if their commit failed, the answer is a 503 saying so and the route's answer is never sent. Once an
    answer has started (a streamed body), later entries are waited for where they are recorded.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its entries deferred; hold its answer until they are committed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deferred = Deferred()
        token = DEFERRED.set(deferred)
        failed = False

        async def after_audit(message: Message) -> None:
            nonlocal failed
            if failed:
                return  # the route's answer, after the 503 that replaced it
            if message["type"] == "http.response.start":
                deferred.open = False
                try:
                    await deferred.settled()
                except KuzetError as exc:
                    failed = True
                    await _plain(send, 503, "StoreError", str(exc.message), hint=exc.hint)
                    return
            await send(message)

        try:
            await self.app(scope, receive, after_audit)
        finally:
            DEFERRED.reset(token)


def client_address(request: Request, trusted_proxies: list[str] | None = None) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy (then the nearest untrusted hop it names).

    X-Forwarded-For is believed only from the `api.trusted_proxies` of the config (none by default): anyone else
    could name any address, never be locked out, and put a false address in the ledger.
    """
    peer = request.client.host if request.client else "unknown"
    nets = _networks(tuple(trusted_proxies or ()))
    if not nets or not _inside(peer, nets):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _inside(hop, nets):
            return hop[:64]
    return peer


@lru_cache(maxsize=16)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _inside(address: str, nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in nets)


def token_from(request: Request) -> tuple[str, bool]:
    """The session token and whether it came from the cookie (which then needs CSRF protection)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE, ""), True


def authenticate(request: Request, user_for: Callable[[str], User], *, form_csrf: str | None = None) -> User:
    """The user behind a request (`user_for` maps a session token to its user).

    Cookie sessions must echo the CSRF cookie on unsafe methods.
    """
    token, from_cookie = token_from(request)
    if not token:
        raise AuthError("not signed in", hint="sign in at /login or send Authorization: Bearer TOKEN")
    if from_cookie and request.method in UNSAFE:
        expected = request.cookies.get(CSRF_COOKIE, "")
        given = request.headers.get(CSRF_HEADER) or form_csrf or ""
        if not expected or not secrets.compare_digest(expected, given):
            raise AuthError("missing or wrong CSRF token", hint="reload the page and try again")
    return user_for(token)


def new_csrf() -> str:
    """A fresh CSRF token."""
    return secrets.token_urlsafe(24)


PUBLIC_BODIES = ("/api/auth/login", "/login")
"""The only unsafe routes that take a body before sign-in (credentials: a few hundred bytes): the API's sign-in and
the dashboard's sign-in form."""
PUBLIC_BODY_MAX = 64 * 1024


class BodyTooLarge(HTTPException):
    """A request body longer than the cap (raised while it streams in, before it is stored anywhere)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"the request body is larger than {cap // 2**20 or 1} MiB")


class BodyGuard:
    """ASGI middleware: no body is read (or spooled to disk) before sign-in, and none is longer than the cap.

    For every POST, PUT, PATCH and DELETE except sign-in itself: the Content-Length is checked against the cap (413),
    the session is checked (401, or the sign-in page for a browser) before a single byte of the body is read, and
    the body is counted as it streams in (413 as soon as it passes the cap).
    """

    def __init__(self, app: ASGIApp, *, authenticate: Callable[[str], object], max_bytes: int) -> None:
        self.app = app
        self.authenticate = authenticate
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one request (see the class docstring)."""
        if scope["type"] != "http" or scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cap = PUBLIC_BODY_MAX if path in PUBLIC_BODIES else self.max_bytes
        if path not in PUBLIC_BODIES and not await self._signed_in(headers):
            if path.startswith(("/api/", "/metrics", "/docs", "/openapi")):
                await _plain(send, 401, "AuthError", "not signed in", extra=[(b"www-authenticate", b"Bearer")])
            else:
                await send({"type": "http.response.start", "status": 303, "headers": [(b"location", b"/login")]})
                await send({"type": "http.response.body", "body": b""})
            return
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > cap:
            await _plain(send, 413, "PayloadTooLarge", f"the request body is larger than {_mib(cap)}")
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge(cap)
            return message

        await self.app(scope, counted, send)

    async def _signed_in(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else _cookie(headers.get("cookie", ""))
        if not token:
            return False
        try:
            await run_in_threadpool(self.authenticate, token)
        except AuthError:
            return False
        return True


def _cookie(header: str) -> str:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return value
    return ""


def _mib(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n // 1024} KiB"


async def _plain(
    send: Send,
    status: int,
    kind: str,
    message: str,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    hint: str = "see /docs",
) -> None:
    body = json.dumps({"error": {"type": kind, "message": message, "hint": hint}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""Authentication for the API and the dashboard: bearer tokens, session cookies with CSRF, login throttling."""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from fastapi import Request

from kuzet.app import Kuzet
from kuzet.core.errors import AuthError, KuzetError
from kuzet.core.types import User

SESSION_COOKIE = "kuzet_session"
CSRF_COOKIE = "kuzet_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class TooManyAttempts(KuzetError):
    """Sign-in is locked for a while after repeated failures."""


@dataclass
class LoginThrottle:
    """Locks a user name (and a client address) after `limit` failures within `window_s` seconds."""

    limit: int = 5
    window_s: float = 900.0
    lock_s: float = 900.0

    def __post_init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, *keys: str) -> None:
        """Raise TooManyAttempts while any key is locked."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                until = self._locked_until.get(key, 0.0)
                if until > now:
                    raise TooManyAttempts(
                        "too many failed sign-ins; try again later", hint=f"wait {int(until - now) + 1} seconds"
                    )

    def failed(self, *keys: str) -> bool:
        """Record a failure; True when it locks a key."""
        now = time.monotonic()
        locked = False
        with self._lock:
            for key in keys:
                q = self._failures[key]
                q.append(now)
                while q and q[0] < now - self.window_s:
                    q.popleft()
                if len(q) >= self.limit:
                    self._locked_until[key] = now + self.lock_s
                    q.clear()
                    locked = True
        return locked

    def succeeded(self, *keys: str) -> None:
        """Forget failures after a good sign-in."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def client_address(request: Request) -> str:
    """The peer address (no proxy headers are trusted)."""
    return request.client.host if request.client else "unknown"


def token_from(request: Request) -> tuple[str, bool]:
    """The session token and whether it came from the cookie (which then needs CSRF protection)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE, ""), True


def authenticate(request: Request, svc: Kuzet, *, form_csrf: str | None = None) -> User:
    """The user behind a request; cookie sessions must echo the CSRF cookie on unsafe methods."""
    token, from_cookie = token_from(request)
    if not token:
        raise AuthError("not signed in", hint="sign in at /login or send Authorization: Bearer TOKEN")
    if from_cookie and request.method in UNSAFE:
        expected = request.cookies.get(CSRF_COOKIE, "")
        given = request.headers.get(CSRF_HEADER) or form_csrf or ""
        if not expected or not secrets.compare_digest(expected, given):
            raise AuthError("missing or wrong CSRF token", hint="reload the page and try again")
    return svc.authenticate(token)


def new_csrf() -> str:
    """A fresh CSRF token."""
    return secrets.token_urlsafe(24)

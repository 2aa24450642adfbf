"""What every dashboard page shares: the menu a user's roles allow, and error pages for people (not JSON)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from kuzet.api.deps import services
from kuzet.api.security import CSRF_COOKIE, token_from
from kuzet.core.errors import KuzetError
from kuzet.core.types import User
from kuzet.services import permissions

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


@dataclass(frozen=True, slots=True)
class Link:
    """One menu entry: where it goes, what it says, and the permission its page needs."""

    href: str
    label: str
    permission: str


MENU = (
    Link("/", "Overview", "overview.view"),
    Link("/cameras", "Cameras", "cameras.view"),
    Link("/events", "Events", "events.view"),
    Link("/traffic", "Traffic", "traffic.passages"),
    Link("/review", "Review", "alerts.view"),
    Link("/watchlists", "Watchlists", "watchlist.view"),
    Link("/people", "People", "people.view"),
    Link("/audit", "Audit", "audit.read"),
    Link("/report", "Transparency", "report.transparency"),
    Link("/users", "Users", "users.list"),
    Link("/system", "System", "cameras.status"),
)
"""The dashboard's pages; a user sees only those their roles may open."""


def menu(user: User, path: str) -> list[dict[str, object]]:
    """The links `user` may follow, the one for `path` marked current."""
    return [
        {"href": link.href, "label": link.label, "current": _under(path, link.href)}
        for link in MENU
        if permissions.holds(user, link.permission)
    ]


def _under(path: str, href: str) -> bool:
    return path == href or (href != "/" and path.startswith(href + "/"))


def page(request: Request, name: str, user: User | None, **context: Any) -> HTMLResponse:
    """Render a dashboard page with the menu, the CSRF token for its forms, and what the user may do.

    `status_code` in `context` sets the HTTP status (200 otherwise).
    """
    status = int(context.pop("status_code", 200))
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "roles": sorted(user.roles) if user else [],
            "menu": menu(user, request.url.path) if user else [],
            "can_review": bool(user and permissions.holds(user, "alerts.review")),
            "csrf": request.cookies.get(CSRF_COOKIE, ""),
            **context,
        },
        status_code=status,
    )


TITLES = {
    400: "That did not work",
    403: "Not allowed",
    404: "Not found",
    405: "Not found",
    409: "Refused",
    413: "Too large",
    422: "Check what you entered",
    429: "Too many attempts",
    503: "Service unavailable",
}


async def error_page(request: Request, status: int, message: str, hint: str) -> Response:
    """An error for a person in a browser: what happened and what to do, with the menu to go on from.

    Refusals were already written to the audit ledger by the service that refused.
    """
    user = await asyncio.to_thread(_signed_in, request)
    if status in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        message, hint = f"There is no page at {request.url.path}.", "use the menu, or go back to the overview"
    elif status == 403:
        hint = hint or "ask an administrator if your work needs this role"
    return page(
        request, "error.html", user, status_code=status, title=TITLES.get(status, "Something went wrong"),
        message=message, hint=hint, code=status,
    )  # fmt: skip


def _signed_in(request: Request) -> User | None:
    """Who is signed in, for the menu only (nothing is done for them, so no CSRF check), or None."""
    token, _ = token_from(request)
    try:
        return services(request).users.authenticate(token) if token else None
    except KuzetError:
        return None

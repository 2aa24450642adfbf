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
from kuzet.web.i18n import LANGUAGES, gettext, language, local_time, marked

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


@dataclass(frozen=True, slots=True)
class Link:
    """One menu entry: where it goes, what it says, and the permission its page needs."""

    href: str
    label: str
    permission: str


MENU = (
    Link("/", marked("Overview"), "overview.view"),
    Link("/wall", marked("Camera wall"), "cameras.view"),
    Link("/map", marked("Map"), "cameras.view"),
    Link("/cameras", marked("Cameras"), "cameras.view"),
    Link("/events", marked("Events"), "events.view"),
    Link("/traffic", marked("Traffic"), "traffic.passages"),
    Link("/review", marked("Review"), "alerts.view"),
    Link("/watchlists", marked("Watchlists"), "watchlist.view"),
    Link("/people", marked("People"), "people.view"),
    Link("/audit", marked("Audit"), "audit.read"),
    Link("/report", marked("Transparency"), "report.transparency"),
    Link("/users", marked("Users"), "users.list"),
    Link("/system", marked("System"), "cameras.status"),
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
    lang = language(request)
    return templates.TemplateResponse(
        request,
        name,
        {
            "_": gettext(lang),
            "lang": lang,
            "languages": LANGUAGES,
            "when": lambda value: local_time(value, lang),
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
    400: marked("That did not work"),
    403: marked("Not allowed"),
    404: marked("Not found"),
    405: marked("Not found"),
    409: marked("Refused"),
    413: marked("Too large"),
    422: marked("Check what you entered"),
    429: marked("Too many attempts"),
    503: marked("Service unavailable"),
}
STATES = (
    marked("starting"),
    marked("up"),
    marked("reconnecting"),
    marked("stalled"),
    marked("failed"),
    marked("restarting"),
    marked("stopped"),
    marked("not running"),
    marked("unknown"),
    marked("pending"),
    marked("approved"),
    marked("rejected"),
    marked("expired"),
    marked("withdrawn"),
    marked("confirmed"),
    marked("running"),
    marked("waiting for review"),
    marked("decided"),
    marked("confirm"),
    marked("reject"),
    marked("all"),
    marked("frames analysed"),
    marked("frames dropped"),
    marked("events"),
    marked("alerts"),
    marked("passages"),
)
"""States (cameras, entries, alerts, the service), review tabs and camera counters: shown translated."""


async def error_page(request: Request, status: int, message: str, hint: str) -> Response:
    """An error for a person in a browser: what happened and what to do, with the menu to go on from.

    Refusals were already written to the audit ledger by the service that refused.
    """
    user = await asyncio.to_thread(_signed_in, request)
    _ = gettext(language(request))
    if status in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        message = _("There is no page at %(path)s.") % {"path": request.url.path}
        hint = _("use the menu, or go back to the overview")
    else:  # a service's refusal or error, worded as a Phrase: in the reader's language
        message, hint = _(message), _(hint)
        if status == 403:
            hint = hint or _("ask an administrator if your work needs this role")
    return page(
        request, "error.html", user, status_code=status, title=_(TITLES.get(status, marked("Something went wrong"))),
        message=message, hint=hint, code=status,
    )  # fmt: skip


def _signed_in(request: Request) -> User | None:
    """Who is signed in, for the menu only (nothing is done for them, so no CSRF check), or None."""
    token, _ = token_from(request)
    try:
        return services(request).users.authenticate(token) if token else None
    except KuzetError:
        return None

"""The dashboard: server-rendered pages (Jinja2) over the same services; forms carry a CSRF token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from kuzet.api.deps import enrol_with_uploads, request_with_upload, services, start_session
from kuzet.api.security import CSRF_COOKIE, SESSION_COOKIE, authenticate
from kuzet.core.errors import InputError, KuzetError
from kuzet.core.types import ROLES, User
from kuzet.governance.policy import SEVERITIES
from kuzet.services import permissions
from kuzet.web.chrome import page
from kuzet.web.i18n import COOKIE, LANGUAGES, Gettext, gettext, language, marked

router = APIRouter(include_in_schema=False)


_page = page


def _flash(request: Request) -> dict[str, str]:
    """What the last form did (`_back`), for the pages forms come back to."""
    return {"msg": request.query_params.get("msg", ""), "err": request.query_params.get("err", "")}


def _user(request: Request, csrf: str | None = None) -> User:
    return authenticate(request, services(request).users.authenticate, form_csrf=csrf)


def _back(path: str, message: str = "", error: str = "") -> RedirectResponse:
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in {"msg": message, "err": error}.items() if v})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


Decide = Callable[..., None]


def _t(request: Request) -> Gettext:
    """The translate function of the reader's language (for messages the views write)."""
    return gettext(language(request))


def _decide(
    request: Request, path: str, decision: str, approve: Decide, reject: Decide, user: User, object_id: int,
    reason: str, what: str,
) -> RedirectResponse:  # fmt: skip
    """Approve or reject a request from a form; back to `path` with the outcome or the refusal's reason."""
    _ = _t(request)
    act = {"approve": approve, "reject": reject}.get(decision)
    if act is None:
        return _back(path, error=_("unknown decision"))
    try:
        act(user, object_id, reason=reason)
    except KuzetError as exc:
        return _back(path, error=_t(request)(exc.message))
    outcome = _("approved") if decision == "approve" else _("rejected")
    return _back(path, message=_("%(what)s %(outcome)s") % {"what": what, "outcome": outcome})


@router.get("/language/{code}")
def choose_language(request: Request, code: str) -> Response:
    """Switch the web app's language (a cookie), back to the page the switcher was on."""
    target = request.query_params.get("next", "/")
    local = target.startswith("/") and not target.startswith("//") and "\\" not in target
    if not local or any(ord(c) < 32 or ord(c) == 127 for c in target):  # a tab or newline makes "/\t/x" mean "//x"
        target = "/"  # only a path of this site: the switcher is no open redirect
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return _page(request, "login.html", None, error=request.query_params.get("err", ""))


@router.post("/login")
def login_form(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()]) -> Response:
    """Sign in from the form."""
    response = RedirectResponse("/", status_code=303)
    try:
        start_session(request, response, services(request), name, password)
    except KuzetError as exc:
        return _back("/login", error=_t(request)(exc.message))
    return response


@router.post("/logout")
def logout_form(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    """Sign out."""
    _user(request, csrf_token)
    services(request).users.logout(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """Cameras, alert counts and ledger status, with live updates."""
    user = _user(request)
    svc = services(request)
    cams = svc.cameras.overview(user) if permissions.holds(user, "cameras.view") else []
    return _page(request, "overview.html", user, overview=svc.dashboard.overview(user), cameras=cams)


PAGE = 50
"""Rows per page of the dashboard's lists."""


def _day(request: Request, name: str, *, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD query parameter as the start (or the end) of that UTC day; None when absent."""
    text = request.query_params.get(name, "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
        return datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InputError(f"{name} {text[:20]!r} is not a date", hint="use YYYY-MM-DD") from None


def _offset(request: Request) -> int:
    given = request.query_params.get("offset", "0")
    return min(int(given), 10**9) if given.isdigit() and len(given) < 12 else 0


def _event_filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    return {
        "camera": q.get("camera", "").strip() or None,
        "identity": q.get("identity", "").strip() or None,
        "since": _day(request, "from"),
        "until": _day(request, "to", end=True),
    }


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request) -> HTMLResponse:
    """Match events with redacted thumbnails: filters (camera, person, days), pages, and a justified CSV export."""
    user = _user(request)
    filters, offset = _event_filters(request), _offset(request)
    rows = services(request).records.events(user, limit=PAGE + 1, offset=offset, **filters)
    query = {k: request.query_params.get(k, "") for k in ("camera", "identity", "from", "to")}
    return _page(
        request, "events.html", user, events=rows[:PAGE], query=query, offset=offset, page=PAGE,
        more=len(rows) > PAGE, camera=query["camera"], **_flash(request),
    )  # fmt: skip


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(request: Request, event_id: int) -> HTMLResponse:
    """One event: its redacted snapshot, camera, person, score and times (audited).

    Reviewers and auditors may open the unredacted picture from here, with a justification (audited too).
    """
    user = _user(request)
    event = services(request).records.event(user, event_id)
    may_unredact = permissions.holds(user, "media.unredacted")
    return _page(request, "event.html", user, event=event, may_unredact=may_unredact)


@router.post("/events/export")
def events_export(
    request: Request, justification: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """The filtered events as CSV, for a written justification (audited)."""
    user = _user(request, csrf_token)
    try:
        text = services(request).records.export_events(user, justification=justification, **_event_filters(request))
    except KuzetError as exc:
        return _back("/events", error=_t(request)(exc.message))
    headers = {"Content-Disposition": 'attachment; filename="kuzet-events.csv"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/traffic", response_class=HTMLResponse)
def traffic_page(request: Request) -> HTMLResponse:
    """Traffic: passages per line and direction, passages and violations with their plates, and evidence.

    Plates are searchable (with near matches); a violation's evidence package downloads for a written justification.
    """
    user = _user(request)
    records = services(request).records
    q = request.query_params
    camera, plate = q.get("camera", "").strip() or None, q.get("plate", "").strip() or None
    fuzzy, offset = q.get("fuzzy", "") == "1", _offset(request)
    passages = records.traffic(user, "passages", camera=camera, plate=plate, fuzzy=fuzzy, limit=PAGE + 1, offset=offset)
    return _page(
        request, "traffic.html", user, counts=records.traffic_counts(user, camera=camera),
        passages=passages[:PAGE], more=len(passages) > PAGE, offset=offset, page=PAGE,
        violations=records.traffic(user, "violations", camera=camera, plate=plate, fuzzy=fuzzy, limit=PAGE),
        query={"camera": camera or "", "plate": plate or "", "fuzzy": "1" if fuzzy else ""}, **_flash(request),
    )  # fmt: skip


@router.post("/traffic/violations/{violation_id}/evidence")
def violation_evidence_form(
    request: Request,
    violation_id: int,
    justification: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Download a violation's evidence package (ZIP) for a written justification (audited)."""
    user = _user(request, csrf_token)
    try:
        name, data = services(request).records.evidence_package(user, violation_id, justification=justification)
    except KuzetError as exc:
        return _back("/traffic", error=_t(request)(exc.message))
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


SEVERITY_LABELS = {"high": marked("high"), "medium": marked("medium"), "low": marked("low")}
REVIEW_TABS = {"pending": marked("waiting for review"), "decided": marked("decided"), "all": marked("all")}


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request) -> HTMLResponse:
    """The review queue: alerts waiting for review first, decided ones on their own tab; filters and pages."""
    user = _user(request)
    q = request.query_params
    tab = q.get("status", "pending")
    tab = tab if tab in REVIEW_TABS else "pending"
    offset = _offset(request)
    query = {k: q.get(k, "").strip() for k in ("camera", "subject", "from", "to", "severity")}
    query["severity"] = query["severity"] if query["severity"] in SEVERITIES else ""
    alerts = services(request).review.list(
        user, status="pending" if tab == "pending" else None, decided=tab == "decided",
        camera=query["camera"] or None, subject=query["subject"] or None, severity=query["severity"] or None,
        since=_day(request, "from"), until=_day(request, "to", end=True), limit=PAGE + 1, offset=offset,
    )  # fmt: skip
    review = services(request).review
    marks = review.marks(user) if tab == "pending" and permissions.holds(user, "alerts.decide_mark") else []
    return _page(
        request, "review.html", user, alerts=alerts[:PAGE], more=len(alerts) > PAGE, offset=offset, page=PAGE,
        tab=tab, tabs=REVIEW_TABS, query=query, severities=SEVERITY_LABELS, marks=marks, **_flash(request),
    )  # fmt: skip


@router.post("/review/{alert_id}")
def review_form(
    request: Request,
    alert_id: int,
    decision: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    wrong_match: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Confirm or reject from the review page (a rejection may mark the appearance a wrong match of the entry)."""
    user = _user(request, csrf_token)
    try:
        status = services(request).review.decide(user, alert_id, decision, reason=reason, wrong_match=bool(wrong_match))
    except KuzetError as exc:
        return _back("/review", error=_t(request)(exc.message))
    _ = _t(request)
    message = _("alert %(id)s: %(decision)s recorded, now %(status)s")
    return _back("/review", message=message % {"id": alert_id, "decision": decision, "status": _(status)})


@router.get("/watchlists", response_class=HTMLResponse)
def watchlists_page(request: Request) -> HTMLResponse:
    """Watchlist entries with what approvers decide on (photo or plate, note, basis, requester), and the forms."""
    user = _user(request)
    svc = services(request)
    policy = svc.ctx.policy
    rows = svc.watchlists.show(user)
    plates: dict[int, str] = {}
    if permissions.holds(user, "watchlist.photo"):
        plates = svc.watchlists.plates(user, [e.entry_id for e in rows if e.kind == "plate" and e.status == "pending"])
    return _page(
        request,
        "watchlists.html",
        user,
        entries=rows,
        plates=plates,
        see_photos=permissions.holds(user, "watchlist.photo"),
        may_withdraw=permissions.holds(user, "watchlist.withdraw"),
        categories=sorted(policy.model.categories),
        purposes=[(n, policy.false_match_rate(n), policy.threshold(n)) for n in sorted(policy.model.categories)],
        bases=policy.model.legal_basis_types,
        **_flash(request),
    )


@router.post("/marks/{alert_id}/{decision}")
def mark_decide(
    request: Request,
    alert_id: int,
    decision: str,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Approve or reject another reviewer's wrong-match mark (from the review page)."""
    user = _user(request, csrf_token)
    review = services(request).review

    def approve(actor: User, alert: int, *, reason: str) -> None:
        review.decide_mark(actor, alert, "approve", reason=reason)

    def reject(actor: User, alert: int, *, reason: str) -> None:
        review.decide_mark(actor, alert, "reject", reason=reason)

    _ = _t(request)
    what = _("the wrong-match mark of alert %(id)s") % {"id": alert_id}
    return _decide(request, "/review", decision, approve, reject, user, alert_id, reason, what)


@router.post("/watchlists/{entry_id}/{decision}")
def watchlist_decide(
    request: Request,
    entry_id: int,
    decision: str,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Approve, reject or withdraw an entry."""
    user = _user(request, csrf_token)
    lists = services(request).watchlists
    if decision == "withdraw":
        try:
            destroyed = lists.withdraw(user, entry_id, reason=reason)
        except KuzetError as exc:
            return _back("/watchlists", error=_t(request)(exc.message))
        _ = _t(request)
        message = _("entry %(id)s withdrawn (%(n)s template(s) destroyed)")
        return _back("/watchlists", message=message % {"id": entry_id, "n": destroyed})
    _ = _t(request)
    what = _("entry %(id)s") % {"id": entry_id}
    return _decide(request, "/watchlists", decision, lists.approve, lists.reject, user, entry_id, reason, what)


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request) -> HTMLResponse:
    """The consented gallery, and the enrolment form."""
    user = _user(request)
    svc = services(request)
    seen = svc.records.recognitions(user) if permissions.holds(user, "events.view") else None
    return _page(request, "people.html", user, people=svc.gallery.people(user), seen=seen, **_flash(request))


@router.post("/people")
async def people_form(
    request: Request,
    name: Annotated[str, Form()],
    photos: Annotated[list[UploadFile], File()],
    consent: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    expires: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Request an enrolment from the form (it waits for an approver)."""
    user = _user(request, csrf_token)
    cameras = [c.strip() for c in scope.split(",") if c.strip()] or None
    try:
        _, enrolled, added = await enrol_with_uploads(
            services(request), user, name, photos, consent=consent, scope=cameras, expires=expires.strip() or None
        )
    except KuzetError as exc:
        return _back("/people", error=_t(request)(exc.message))
    _ = _t(request)
    message = _("enrolment of %(name)s requested (%(n)s photo(s)); it needs an approver")
    return _back("/people", message=message % {"name": enrolled, "n": added})


@router.post("/people/{person_id}/{decision}")
def people_decide(
    request: Request,
    person_id: int,
    decision: str,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Approve or reject an enrolment."""
    user = _user(request, csrf_token)
    gallery = services(request).gallery
    _ = _t(request)
    what = _("enrolment of person %(id)s") % {"id": person_id}
    return _decide(request, "/people", decision, gallery.approve, gallery.reject, user, person_id, reason, what)


@router.post("/watchlists")
async def watchlist_request_form(
    request: Request,
    list_name: Annotated[str, Form()],
    name: Annotated[str, Form()],
    category: Annotated[str, Form()],
    legal_basis: Annotated[str, Form()],
    reference: Annotated[str, Form()],
    authority: Annotated[str, Form()],
    expires: Annotated[str, Form()],
    photo: Annotated[UploadFile | None, File()] = None,
    plate: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """File a watchlist request (a face photo, or a plate) from the form; refusals show their reason (audited)."""
    from kuzet.governance.watchlists import WatchlistRequest

    user = _user(request, csrf_token)
    try:
        req = WatchlistRequest.from_text(
            list_name=list_name,
            name=name,
            category=category,
            legal_basis=legal_basis,
            reference=reference,
            authority=authority,
            expires=expires,
            note=note,
        )
        entry_id = await request_with_upload(services(request), user, req, photo, plate=plate.strip() or None)
    except KuzetError as exc:
        return _back("/watchlists", error=_t(request)(exc.message))
    _ = _t(request)
    message = _("requested entry %(id)s; it needs another user's approval")
    return _back("/watchlists", message=message % {"id": entry_id})


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> HTMLResponse:
    """The audit log browser, newest entries first, with older pages."""
    user = _user(request)
    svc = services(request)
    given = request.query_params.get("before", "")
    before = int(given) if given.isdigit() and len(given) < 16 else None
    rows, size = svc.audit.recent(user, before=before, limit=100)
    return _page(
        request,
        "audit.html",
        user,
        entries=rows,
        size=size,
        older=rows[-1].seq if rows and rows[-1].seq > 1 else None,
        checkpoints=svc.audit.checkpoints(user)[-5:],
        verdict=request.query_params.get("msg", ""),
        err=request.query_params.get("err", ""),
    )


@router.post("/audit/verify")
def audit_verify_form(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    """Verify the ledger from the browser."""
    user = _user(request, csrf_token)
    report = services(request).audit.verify(user)
    _ = _t(request)
    if report.ok:
        return _back(
            "/audit",
            message=_("ledger OK: %(entries)s entries, %(checkpoints)s checkpoints verified")
            % {"entries": report.entries, "checkpoints": report.checkpoints},
        )
    return _back("/audit", error=_("LEDGER TAMPERED: %(problem)s") % {"problem": report.problem})


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request) -> HTMLResponse:
    """The transparency report for a chosen period (the last 30 days unless `from`/`to` say), with downloads."""
    from kuzet.governance.report import render_body

    user = _user(request)
    svc = services(request)
    today = svc.ctx.now().date()
    first, last = _day(request, "from"), _day(request, "to")
    end = last.date() if last else today
    start = first.date() if first else end - timedelta(days=30)
    rep = svc.reports.transparency(user, start, end)
    body = Markup(render_body(rep, _t(request)))
    return _page(request, "report.html", user, report=body, start=start, end=end)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> HTMLResponse:
    """Users and roles."""
    user = _user(request)
    users = services(request).users.list(user)
    return _page(request, "users.html", user, users=users, all_roles=ROLES, **_flash(request))


@router.post("/users")
async def users_form(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    """Add a user from the form (administrators): a name, a password of at least 12 characters, one or more roles."""
    form = await request.form()
    user = _user(request, csrf_token)
    roles = [str(r) for r in form.getlist("roles")]
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    try:
        added = services(request).users.add(user, name, password, roles)
    except KuzetError as exc:
        return _back("/users", error=_t(request)(exc.message))
    _ = _t(request)
    message = _("added %(name)s (%(roles)s)") % {"name": added.name, "roles": ", ".join(sorted(added.roles))}
    return _back("/users", message=message)


CAMERA_RECENT = 5
"""Events and passages the camera page shows (the full lists are a link away)."""

CAMERA_RECORDINGS = 10
"""Recording segments the camera page lists, newest first."""


@router.get("/cameras/{name}", response_class=HTMLResponse)
def camera_page(request: Request, name: str) -> HTMLResponse:
    """One camera: its picture with detections, recent events and passages, and its recordings (played redacted).

    The picture is live or a replay (faces and plates pixelated); every list read and every play is audited.
    """
    user = _user(request)
    svc = services(request)
    cam = svc.cameras.camera(user, name)
    events = None
    if permissions.holds(user, "events.view"):
        events = svc.records.events(user, camera=name, limit=CAMERA_RECENT)
    passages = None
    configured = any(c.name == name and "traffic" in c.analytics for c in svc.ctx.config.cameras)
    live = cam.get("live")
    counted = isinstance(live, dict) and bool(live.get("passages"))
    if (configured or counted) and permissions.holds(user, "traffic.passages"):
        passages = svc.records.traffic(user, "passages", camera=name, limit=CAMERA_RECENT)
    recordings = None
    if permissions.holds(user, "recordings.list"):
        found = svc.media.recordings(user, camera=name)
        recordings = {"shown": found[:CAMERA_RECORDINGS], "total": len(found)}
    return _page(
        request, "camera.html", user, cam=cam, events=events, passages=passages, recordings=recordings,
        may_play=permissions.holds(user, "recordings.view"),
    )  # fmt: skip


@router.get("/wall", response_class=HTMLResponse)
def wall_page(request: Request) -> HTMLResponse:
    """The camera wall: every camera with its state, its latest redacted picture when up, and its counts."""
    user = _user(request)
    cams = services(request).cameras.overview(user)
    return _page(request, "wall.html", user, cameras=cams)


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request) -> HTMLResponse:
    """The map: cameras where they stand, coloured by state, with counts and open alerts (no tiles from outside)."""
    user = _user(request)
    return _page(request, "map.html", user, camera_map=services(request).cameras.map(user))


@router.get("/system", response_class=HTMLResponse)
def system_page(request: Request) -> HTMLResponse:
    """Health: the store and the ledger, the machine's load, the live service and each camera's rates and drops."""
    user = _user(request)
    return _page(request, "system.html", user, system=services(request).dashboard.system(user))


@router.get("/cameras", response_class=HTMLResponse)
def cameras_page(request: Request) -> HTMLResponse:
    """Cameras and what they analysed."""
    user = _user(request)
    return _page(request, "cameras.html", user, cameras=services(request).cameras.overview(user))

"""REST routers, one per resource; each handler calls one `Kuzet` service method (no SQL here)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from kuzet.api.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    authenticate,
    client_address,
    new_csrf,
    token_from,
)
from kuzet.app import Kuzet
from kuzet.core.errors import AuthError, InputError, KuzetError, NotFoundError, PermissionDenied
from kuzet.core.types import User
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.store.repositories import PersonSummary

MAX_UPLOAD = 20 * 1024 * 1024


def service(request: Request) -> Kuzet:
    """The application's services."""
    svc: Kuzet = request.app.state.kuzet
    return svc


def current_user(request: Request) -> User:
    """The signed-in user (bearer token, or session cookie with CSRF on unsafe methods)."""
    return authenticate(request, service(request))


Svc = Annotated[Kuzet, Depends(service)]
Id = Annotated[int, PathParam(ge=1, le=2**53, description="A record id")]
Name = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Actor = Annotated[User, Depends(current_user)]


class ErrorBody(BaseModel):
    """Every error response: {"error": {"type", "message", "hint"}}."""

    error: dict[str, str]


class LoginBody(BaseModel):
    """Credentials."""

    name: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)


class ReasonBody(BaseModel):
    """A decision's reason."""

    reason: str = Field("", max_length=2000)


class ReviewBody(BaseModel):
    """A reviewer's decision."""

    decision: str = Field(..., pattern="^(confirm|reject)$")
    reason: str = Field(..., min_length=1, max_length=2000)


class NewUserBody(BaseModel):
    """A user to add."""

    name: str = Field(..., min_length=2, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)
    roles: list[str] = Field(..., min_length=1, max_length=6)


health = APIRouter(tags=["health"])
auth = APIRouter(prefix="/api/auth", tags=["auth"])
users = APIRouter(prefix="/api/users", tags=["users"])
cameras = APIRouter(prefix="/api/cameras", tags=["cameras"])
events = APIRouter(prefix="/api/events", tags=["events"])
alerts = APIRouter(prefix="/api/alerts", tags=["alerts"])
watchlists = APIRouter(prefix="/api/watchlists", tags=["watchlists"])
people = APIRouter(prefix="/api/people", tags=["people"])
media = APIRouter(prefix="/api/media", tags=["media"])
audit = APIRouter(prefix="/api/audit", tags=["audit"])
reports = APIRouter(prefix="/api/reports", tags=["reports"])
stream = APIRouter(prefix="/api/stream", tags=["stream"])
traffic = APIRouter(prefix="/api/traffic", tags=["traffic"])
metrics = APIRouter(tags=["metrics"])


@health.get("/api/health")
def get_health() -> dict[str, str]:
    """Liveness (the only route without authentication)."""
    return {"status": "ok"}


def start_session(request: Request, response: Response, svc: Kuzet, name: str, password: str) -> tuple[User, str]:
    """Check credentials (throttled per account and address, in the database); set the session and CSRF cookies."""
    address = client_address(request, svc.config.api.trusted_proxies)
    user, token = svc.login(name, password, address=address)
    secure = bool(request.app.state.secure_cookies)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=12 * 3600)
    response.set_cookie(CSRF_COOKIE, new_csrf(), httponly=False, samesite="strict", secure=secure, max_age=12 * 3600)
    return user, token


@auth.post("/login")
def login(body: LoginBody, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    """Sign in: returns a bearer token and sets a session cookie (with a CSRF cookie) for the browser."""
    user, token = start_session(request, response, svc, body.name, body.password)
    return {"token": token, "user": user.name, "roles": sorted(user.roles)}


@auth.post("/logout")
def logout(request: Request, response: Response, svc: Svc, actor: Actor) -> dict[str, str]:
    """End the session."""
    token, _ = token_from(request)
    svc.logout(token)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return {"status": "signed out", "user": actor.name}


@auth.get("/me")
def me(actor: Actor) -> dict[str, Any]:
    """The signed-in user."""
    return {"user": actor.name, "roles": sorted(actor.roles)}


@users.get("")
def list_users(svc: Svc, actor: Actor) -> list[dict[str, Any]]:
    """Users and roles (admins, auditors)."""
    return [{"id": u.user_id, "name": u.name, "roles": sorted(u.roles)} for u in svc.users(actor)]


@users.post("", status_code=201)
def add_user(body: NewUserBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Add a user (admins)."""
    user = svc.add_user(actor, body.name, body.password, body.roles)
    return {"id": user.user_id, "name": user.name, "roles": sorted(user.roles)}


@cameras.get("")
def list_cameras(svc: Svc, actor: Actor) -> list[dict[str, object]]:
    """Configured and seen cameras with their analysis counts."""
    return svc.cameras(actor)


@cameras.get("/status")
def camera_status(svc: Svc, actor: Actor) -> dict[str, Any]:
    """What `kuzet run` last reported: each live camera's state (up, reconnecting, stalled, failed...) and counters."""
    return asdict(svc.live_status(actor))


@metrics.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def get_metrics(request: Request, svc: Svc) -> PlainTextResponse:
    """Prometheus metrics of `kuzet run`: the `run.metrics_token` bearer token, or a signed-in admin or auditor."""
    from kuzet.governance.users import require
    from kuzet.runtime.metrics import CONTENT_TYPE, render
    from kuzet.runtime.status import ServiceStatus, read_status

    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not svc.metrics_token_ok(bearer):
        require(current_user(request), "admin", "auditor", action="read metrics")
    try:
        status = read_status(svc.data_dir)
    except NotFoundError:
        status = ServiceStatus(pid=0, started=0.0, updated=0.0, state="not running", cameras=[])
    return PlainTextResponse(render(status), media_type=CONTENT_TYPE)


@cameras.get(
    "/{name}/replay", response_class=StreamingResponse, responses={200: {"content": {"multipart/x-mixed-replace": {}}}}
)
def camera_replay(
    name: Name, svc: Svc, actor: Actor, fps: Annotated[float, Query(gt=0, le=15)] = 5.0
) -> StreamingResponse:
    """The camera's picture (or its last analysed video) as MJPEG, detections drawn, every face and plate pixelated."""
    frames = svc.camera_replay(actor, name, fps=fps)

    def parts() -> Iterator[bytes]:
        for jpeg in frames:
            yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n"

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")


def _page(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """One page of a paginated list: `next_offset` is None on the last page."""
    return {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(items) if len(items) == limit else None,
    }


@events.get("")
def list_events(
    svc: Svc,
    actor: Actor,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    identity: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[date | None, Query(description="First day (UTC)")] = None,
    until: Annotated[date | None, Query(description="Day after the last (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Match events, newest first, filtered and paginated (viewing is audited)."""
    from datetime import UTC, datetime, time

    start = datetime.combine(since, time(0), tzinfo=UTC) if since else None
    end = datetime.combine(until, time(0), tzinfo=UTC) if until else None
    rows = svc.events(actor, camera=camera, identity=identity, limit=limit, offset=offset, since=start, until=end)
    items = [{k: v for k, v in svc.event_dict(e).items() if k != "snapshot"} for e in rows]
    for item, e in zip(items, rows, strict=True):
        item["snapshot_url"] = f"/api/media/event/{e.event_id}"
    return _page(items, limit, offset)


@traffic.get("/{kind}")
def list_traffic(
    kind: Annotated[str, PathParam(pattern="^(passages|violations)$")],
    svc: Svc,
    actor: Actor,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    plate: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Traffic passages or violations (with evidence hashes), newest first (viewing is audited)."""
    items = svc.traffic_records(actor, kind, camera=camera, plate=plate, limit=limit, offset=offset)
    return _page(items, limit, offset)


@alerts.get("")
def list_alerts(
    svc: Svc, actor: Actor, status: Annotated[str, Query(pattern="^(pending|confirmed|rejected|all)$")] = "pending"
) -> list[dict[str, Any]]:
    """Alerts with score, threshold, legal basis and decisions (reviewers, auditors)."""
    rows = svc.review_list(actor, status=None if status == "all" else status)
    out = []
    for a in rows:
        d = asdict(a)
        d["snapshot_urls"] = [f"/api/media/alert/{a.alert_id}?index={i}" for i in range(len(a.snapshots))]
        d.pop("snapshots")
        d.pop("enrolled_photo")
        out.append(d)
    return out


@alerts.post("/{alert_id}/review")
def review_alert(alert_id: Id, body: ReviewBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Confirm or reject an alert (reviewers; two different reviewers confirm an identity alert)."""
    return {"alert_id": alert_id, "status": svc.review(actor, alert_id, body.decision, reason=body.reason)}


@watchlists.get("")
def list_watchlists(
    svc: Svc, actor: Actor, status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|expired)$")] = None
) -> list[dict[str, Any]]:
    """Watchlist entries (never templates)."""
    return [asdict(e) for e in svc.watchlist_show(actor, status=status)]


async def save_upload(upload: UploadFile, folder: Path) -> Path:
    """Write an upload (at most 20 MiB) into `folder`; returns its path."""
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise InputError(f"{upload.filename} is larger than {MAX_UPLOAD // 2**20} MiB", hint="send a smaller photo")
    path = folder / f"upload-{len(list(folder.iterdir()))}"
    path.write_bytes(data)
    return path


@watchlists.post("", status_code=201)
async def request_entry(
    svc: Svc,
    actor: Actor,
    list_name: Annotated[str, Form(max_length=100)],
    name: Annotated[str, Form(max_length=200)],
    category: Annotated[str, Form(max_length=64)],
    legal_basis: Annotated[str, Form(max_length=64)],
    reference: Annotated[str, Form(max_length=200)],
    authority: Annotated[str, Form(max_length=200)],
    expires: Annotated[str, Form(max_length=10)],
    photo: Annotated[UploadFile, File()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> dict[str, int]:
    """Request a watchlist entry (requesters); it matches nothing until another user approves it."""
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
    return {"id": await request_with_upload(svc, actor, req, photo)}


async def request_with_upload(svc: Kuzet, actor: User, req: WatchlistRequest, photo: UploadFile) -> int:
    """File a watchlist request whose photo arrived as an upload (API and dashboard)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = await save_upload(photo, Path(tmp))
        return await asyncio.to_thread(svc.watchlist_request, actor, req, path)


@watchlists.post("/{entry_id}/approve")
def approve_entry(entry_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Approve a request (approvers; never the requester)."""
    svc.watchlist_approve(actor, entry_id, reason=body.reason)
    return {"id": entry_id, "status": "approved"}


@watchlists.post("/{entry_id}/reject")
def reject_entry(entry_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Reject a request; its template and photo are destroyed."""
    svc.watchlist_reject(actor, entry_id, reason=body.reason)
    return {"id": entry_id, "status": "rejected"}


def person_dict(p: PersonSummary) -> dict[str, Any]:
    """An enrolment as the API and dashboard show it (never its templates)."""
    return {
        "id": p.identity.person_id,
        "name": p.identity.name,
        "status": p.status,
        "templates": p.templates,
        "consent": p.consent,
        "scope": p.scope,
        "expires": p.expires_at,
        "enrolled": p.created_at,
        "decision_reason": p.decision_reason,
        "photo_urls": [f"/api/media/person/{p.identity.person_id}?index={i}" for i in range(p.photos)],
    }


@people.get("")
def list_people(
    svc: Svc,
    actor: Actor,
    status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|expired)$")] = None,
) -> list[dict[str, Any]]:
    """Enrolments with status, consent record, scope and expiry (viewing is audited)."""
    return [person_dict(p) for p in svc.people(actor, status=status)]


@people.post("", status_code=201)
async def enrol_person(
    svc: Svc,
    actor: Actor,
    name: Annotated[str, Form(max_length=200)],
    photos: Annotated[list[UploadFile], File()],
    consent: Annotated[str, Form(min_length=1, max_length=500, description="Reference of the signed consent record")],
    scope: Annotated[list[str] | None, Form(description="Camera names or purposes (default: every camera)")] = None,
    expires: Annotated[str | None, Form(max_length=10, description="YYYY-MM-DD (default from the policy)")] = None,
) -> dict[str, Any]:
    """Request the enrolment of a consenting person (operators, admins); it matches nobody until approved."""
    from kuzet.governance.watchlists import parse_expiry

    if not photos or len(photos) > 20:
        raise InputError("send between 1 and 20 photos", hint="one face per photo")
    if scope is not None and len(scope) > 50:
        raise InputError("at most 50 scope entries", hint="name the cameras or purposes the person is seen on")
    until = parse_expiry(expires, option="expires") if expires else None
    with tempfile.TemporaryDirectory() as tmp:
        paths = [await save_upload(p, Path(tmp)) for p in photos]
        result = await asyncio.to_thread(
            svc.enroll, actor, name, paths, consent=consent, scope=scope or None, expires=until
        )
    return {"id": result.identity.person_id, "name": result.identity.name, "added": result.added, "status": "pending"}


@people.post("/{person_id}/approve")
def approve_person(person_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Approve a pending enrolment (approvers; never the one who enrolled the person)."""
    svc.people_approve(actor, person_id, reason=body.reason)
    return {"id": person_id, "status": "approved"}


@people.post("/{person_id}/reject")
def reject_person(person_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Reject a pending enrolment; its templates and photos are destroyed."""
    svc.people_reject(actor, person_id, reason=body.reason)
    return {"id": person_id, "status": "rejected"}


@media.get("/{kind}/{object_id}", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def get_media(
    kind: Annotated[str, PathParam(pattern="^(event|alert|watchlist|person)$")],
    object_id: Id,
    svc: Svc,
    actor: Actor,
    index: Annotated[int, Query(ge=0, le=20)] = 0,
) -> Response:
    """A redacted event or alert snapshot, a watchlist entry's or an enrolment's photo (JPEG; every view audited)."""
    if kind not in ("event", "alert", "watchlist", "person"):
        raise InputError(f"unknown media kind {kind!r}", hint="use event, alert, watchlist or person")
    files = svc.media_export(actor, kind, object_id, unredacted=False, justification="")
    if index >= len(files):
        raise InputError(f"{kind} {object_id} has {len(files)} image(s)", hint="use a smaller index")
    return Response(files[index], media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@media.get("/{kind}/{object_id}/unredacted", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def get_unredacted(
    kind: Annotated[str, PathParam(pattern="^(event|alert|watchlist)$")],
    object_id: Id,
    svc: Svc,
    actor: Actor,
    justification: Annotated[str, Query(min_length=1, max_length=500)],
    index: Annotated[int, Query(ge=0, le=16)] = 0,
) -> Response:
    """The unredacted original (reviewers, auditors or a granted user; justification required; audited)."""
    if kind not in ("event", "alert"):
        raise InputError(f"unknown media kind {kind!r}", hint="use event or alert")
    files = svc.media_export(actor, kind, object_id, unredacted=True, justification=justification)
    if index >= len(files):
        raise InputError(f"{kind} {object_id} has {len(files)} image(s)", hint="use a smaller index")
    return Response(files[index], media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@audit.get("/log")
def audit_log(
    svc: Svc,
    actor: Actor,
    start: Annotated[int, Query(ge=1, le=10**12)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    """Ledger entries, oldest first (auditors, admins)."""
    return [asdict(e) for e in svc.audit_log(actor, start=start, limit=limit, action=action)]


@audit.post("/verify")
def audit_verify(svc: Svc, actor: Actor) -> dict[str, Any]:
    """Verify the whole ledger."""
    return asdict(svc.audit_verify(actor))


@audit.get("/proof/{seq}")
def audit_proof(seq: Id, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Inclusion proof of one entry against the newest checkpoint."""
    proof = svc.audit_prove(actor, seq)
    return {
        "entry": asdict(proof.entry),
        "checkpoint": asdict(proof.checkpoint),
        "audit_path": proof.path,
        "valid": proof.valid,
    }


@audit.get("/checkpoints")
def audit_checkpoints(svc: Svc, actor: Actor) -> list[dict[str, Any]]:
    """Signed checkpoints."""
    return [asdict(c) for c in svc.checkpoints(actor)]


@audit.get("/checkpoint/latest")
def audit_latest_checkpoint(svc: Svc, actor: Actor) -> dict[str, Any]:
    """The newest signed checkpoint, in the format witnesses hold (auditors); it covers this request's own entry."""
    return svc.audit_latest_checkpoint(actor).signed_json()


@audit.get("/consistency")
def audit_consistency_sizes(
    svc: Svc,
    actor: Actor,
    first: Annotated[int, Query(ge=1, le=2**53, description="Entries in the older tree")],
    second: Annotated[int, Query(ge=1, le=2**53, description="Entries in the newer tree")],
) -> dict[str, Any]:
    """RFC 6962 consistency proof that the ledger's first `second` entries extend its first `first` (auditors)."""
    return {"first": first, "second": second, "proof": svc.audit_consistency_sizes(actor, first, second)}


@audit.get("/key-rotations")
def audit_key_rotations(svc: Svc, actor: Actor) -> list[dict[str, Any]]:
    """Every hand-over of the checkpoint signing key, signed by the old key (auditors, admins)."""
    return [r.to_json() for r in svc.audit_key_rotations(actor)]


@audit.post("/checkpoint", status_code=201)
def audit_checkpoint(svc: Svc, actor: Actor) -> dict[str, Any]:
    """Sign a checkpoint now."""
    return asdict(svc.audit_checkpoint(actor))


@reports.get("/transparency", response_model=None)
def transparency(
    svc: Svc,
    actor: Actor,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    fmt: Annotated[str, Query(alias="format", pattern="^(json|html)$")] = "json",
) -> dict[str, object] | HTMLResponse:
    """The transparency report for a period (aggregates only)."""
    from kuzet.governance.report import render_html

    rep = svc.transparency_report(actor, start, end)
    if fmt == "html":
        return HTMLResponse(render_html(rep))
    return rep.to_json()


@stream.get("", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def live(request: Request, svc: Svc, actor: Actor) -> StreamingResponse:
    """Server-sent events: `alert` for each new alert, `status` with counts every few seconds."""
    if not actor.roles:
        raise PermissionDenied("no role", hint="ask an administrator")
    # Alert events go only to those who may see alerts (GET /api/alerts); everyone else gets the status counts.
    sees_alerts = actor.has("reviewer", "auditor")
    last = max([0, *(int(str(a["id"])) for a in svc.alert_feed(0))]) if sees_alerts else 0
    once = request.query_params.get("once") == "1"

    async def events_out() -> AsyncIterator[str]:
        nonlocal last
        yield "retry: 2000\n\n"
        ticks = 0
        while True:
            for alert in await asyncio.to_thread(svc.alert_feed, last) if sees_alerts else []:
                last = max(last, int(str(alert["id"])))
                yield f"event: alert\ndata: {json.dumps(alert)}\n\n"
            if ticks % 5 == 0:
                overview = await asyncio.to_thread(svc.overview, actor)
                yield f"event: status\ndata: {json.dumps(overview)}\n\n"
            if once or await request.is_disconnected():
                return
            ticks += 1
            await asyncio.sleep(1.0)

    return StreamingResponse(events_out(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


ROUTERS = [
    health,
    auth,
    users,
    cameras,
    events,
    alerts,
    watchlists,
    people,
    media,
    audit,
    reports,
    stream,
    traffic,
    metrics,
]


def error_status(exc: KuzetError) -> int:
    """HTTP status for a kuzet error."""
    from kuzet.core.errors import NotFoundError, PolicyRefusal, StoreError, TooManyAttempts

    if isinstance(exc, TooManyAttempts):
        return 429
    if isinstance(exc, StoreError):
        return 503
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PolicyRefusal):
        return 409
    return 422 if isinstance(exc, InputError) else 400

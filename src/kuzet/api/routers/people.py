"""Enrolments of consenting people."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from kuzet.api.deps import Actor, Id, Svc, enrol_with_uploads
from kuzet.api.schemas import ReasonBody
from kuzet.core.errors import InputError
from kuzet.governance.enrolment import MAX_CONSENT
from kuzet.services import views

router = APIRouter(prefix="/api/people", tags=["people"])


@router.get("")
def list_people(
    svc: Svc,
    actor: Actor,
    status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|expired)$")] = None,
) -> list[dict[str, Any]]:
    """Enrolments with status, consent record, scope and expiry (viewing is audited)."""
    return [views.person(p) for p in svc.gallery.people(actor, status=status)]


@router.post("", status_code=201)
async def enrol_person(
    svc: Svc,
    actor: Actor,
    name: Annotated[str, Form(max_length=200)],
    photos: Annotated[list[UploadFile], File()],
    consent: Annotated[
        str, Form(min_length=1, max_length=MAX_CONSENT, description="Reference of the signed consent record")
    ],
    scope: Annotated[list[str] | None, Form(description="Camera names or purposes (default: every camera)")] = None,
    expires: Annotated[str | None, Form(max_length=10, description="YYYY-MM-DD (default from the policy)")] = None,
) -> dict[str, Any]:
    """Request the enrolment of a consenting person (operators, admins); it matches nobody until approved."""
    if not photos or len(photos) > 20:
        raise InputError("send between 1 and 20 photos", hint="one face per photo")
    if scope is not None and len(scope) > 50:
        raise InputError("at most 50 scope entries", hint="name the cameras or purposes the person is seen on")
    person_id, enrolled, added = await enrol_with_uploads(
        svc, actor, name, photos, consent=consent, scope=scope, expires=expires
    )
    return {"id": person_id, "name": enrolled, "added": added, "status": "pending"}


@router.post("/{person_id}/approve")
def approve_person(person_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Approve a pending enrolment (approvers; never the one who enrolled the person)."""
    svc.gallery.approve(actor, person_id, reason=body.reason)
    return {"id": person_id, "status": "approved"}


@router.post("/{person_id}/reject")
def reject_person(person_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Reject a pending enrolment; its templates and photos are destroyed."""
    svc.gallery.reject(actor, person_id, reason=body.reason)
    return {"id": person_id, "status": "rejected"}

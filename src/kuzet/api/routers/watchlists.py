"""Watchlist entries: requests, approvals, rejections."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from kuzet.api.deps import Actor, Id, Svc, request_with_upload
from kuzet.api.schemas import ReasonBody
from kuzet.governance.watchlists import MAX_LENGTHS, WatchlistRequest

router = APIRouter(prefix="/api/watchlists", tags=["watchlists"])


@router.get("")
def list_watchlists(
    svc: Svc,
    actor: Actor,
    status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|expired|withdrawn)$")] = None,
) -> list[dict[str, Any]]:
    """Watchlist entries (never templates)."""
    return [asdict(e) for e in svc.watchlists.show(actor, status=status)]


@router.post("", status_code=201)
async def request_entry(
    svc: Svc,
    actor: Actor,
    list_name: Annotated[str, Form(max_length=MAX_LENGTHS["list_name"])],
    name: Annotated[str, Form(max_length=MAX_LENGTHS["subject_name"])],
    category: Annotated[str, Form(max_length=MAX_LENGTHS["category"])],
    legal_basis: Annotated[str, Form(max_length=MAX_LENGTHS["legal_basis"])],
    reference: Annotated[str, Form(max_length=MAX_LENGTHS["reference"])],
    authority: Annotated[str, Form(max_length=MAX_LENGTHS["authority"])],
    expires: Annotated[str, Form(max_length=10)],
    photo: Annotated[UploadFile | None, File()] = None,
    plate: Annotated[str | None, Form(max_length=20)] = None,
    note: Annotated[str, Form(max_length=MAX_LENGTHS["note"])] = "",
) -> dict[str, int]:
    """Request a watchlist entry (requesters); it matches nothing until another user approves it.

    A face category (e.g. wanted-person) takes `photo` (one face); a plate category (e.g. stolen-vehicle) takes
    `plate` (its letters and digits) instead.
    """
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
    return {"id": await request_with_upload(svc, actor, req, photo, plate=plate)}


@router.post("/{entry_id}/approve")
def approve_entry(entry_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Approve a request (approvers; never the requester)."""
    svc.watchlists.approve(actor, entry_id, reason=body.reason)
    return {"id": entry_id, "status": "approved"}


@router.post("/{entry_id}/withdraw")
def withdraw_entry(entry_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Withdraw a pending or approved entry before it expires (its requester or an approver; a reason is required).

    It stops matching at once; its template and photo are destroyed.
    """
    destroyed = svc.watchlists.withdraw(actor, entry_id, reason=body.reason)
    return {"id": entry_id, "status": "withdrawn", "templates_destroyed": destroyed}


@router.post("/{entry_id}/reject")
def reject_entry(entry_id: Id, body: ReasonBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Reject a request; its template and photo are destroyed."""
    svc.watchlists.reject(actor, entry_id, reason=body.reason)
    return {"id": entry_id, "status": "rejected"}

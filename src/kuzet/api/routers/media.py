"""Snapshots and photos (redacted by default; originals justified and audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam

from kuzet.api.deps import Actor, Id, Svc
from kuzet.core.errors import InputError

router = APIRouter(prefix="/api/media", tags=["media"])
JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}}


def _one(files: list[bytes], kind: str, object_id: int, index: int) -> Response:
    if index >= len(files):
        raise InputError(f"{kind} {object_id} has {len(files)} image(s)", hint="use a smaller index")
    return Response(files[index], media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/{kind}/{object_id}", response_class=Response, responses=JPEG)
def get_media(
    kind: Annotated[str, PathParam(pattern="^(event|alert|watchlist|person)$")],
    object_id: Id,
    svc: Svc,
    actor: Actor,
    index: Annotated[int, Query(ge=0, le=20)] = 0,
) -> Response:
    """A redacted event or alert snapshot, a watchlist entry's or an enrolment's photo (JPEG; every view audited)."""
    files = svc.media.export(actor, kind, object_id, unredacted=False, justification="")
    return _one(files, kind, object_id, index)


@router.get("/{kind}/{object_id}/unredacted", response_class=Response, responses=JPEG)
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
    files = svc.media.export(actor, kind, object_id, unredacted=True, justification=justification)
    return _one(files, kind, object_id, index)

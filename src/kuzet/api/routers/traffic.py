"""Traffic passages and violations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from kuzet.api.deps import Actor, Svc
from kuzet.api.routers.pages import page

router = APIRouter(prefix="/api/traffic", tags=["traffic"])


@router.get("/{kind}")
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
    items = svc.records.traffic(actor, kind, camera=camera, plate=plate, limit=limit, offset=offset)
    return page(items, limit, offset)

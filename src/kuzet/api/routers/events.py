"""Match events."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from kuzet.api.deps import Actor, Svc, on_loop
from kuzet.api.routers.pages import json_page
from kuzet.services import views

router = APIRouter(prefix="/api/events", tags=["events"])


def _midnight(day: date | None) -> datetime | None:
    return datetime.combine(day, time(0), tzinfo=UTC) if day else None


@router.get("", response_model=dict[str, Any])
async def list_events(
    svc: Svc,
    actor: Actor,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    identity: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[date | None, Query(description="First day (UTC)")] = None,
    until: Annotated[date | None, Query(description="Day after the last (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Match events, newest first, filtered and paginated (viewing is audited)."""

    def answer() -> Response:  # the listing and its JSON: on the event loop while quick (SQLite), see `on_loop`
        rows = svc.records.events(
            actor,
            camera=camera,
            identity=identity,
            limit=limit,
            offset=offset,
            since=_midnight(since),
            until=_midnight(until),
        )
        return json_page([views.event_for_api(e, svc.ctx.media) for e in rows], limit, offset)

    return await on_loop(svc, answer)

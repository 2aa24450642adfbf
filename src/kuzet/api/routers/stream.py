"""Live updates for the dashboard: server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from kuzet.api.deps import Actor, Svc

router = APIRouter(prefix="/api/stream", tags=["stream"])
TICK_S = 1.0
STATUS_EVERY = 5


@router.get("", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def live(request: Request, svc: Svc, actor: Actor) -> StreamingResponse:
    """Server-sent events: `alert` for each new alert, `status` with counts every few seconds."""
    svc.dashboard.overview(actor)  # refuses (and ledgers) a user without a role before the stream opens
    # Alert events go only to those who may see alerts (GET /api/alerts); everyone else gets the status counts.
    last = max([0, *(int(str(a["id"])) for a in svc.dashboard.alert_feed(actor, 0))])
    once = request.query_params.get("once") == "1"

    async def events_out() -> AsyncIterator[str]:
        nonlocal last
        yield "retry: 2000\n\n"
        ticks = 0
        while True:
            for alert in await asyncio.to_thread(svc.dashboard.alert_feed, actor, last):
                last = max(last, int(str(alert["id"])))
                yield f"event: alert\ndata: {json.dumps(alert)}\n\n"
            if ticks % STATUS_EVERY == 0:
                overview = await asyncio.to_thread(svc.dashboard.overview, actor)
                yield f"event: status\ndata: {json.dumps(overview)}\n\n"
            if once or await request.is_disconnected():
                return
            ticks += 1
            await asyncio.sleep(TICK_S)

    return StreamingResponse(events_out(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

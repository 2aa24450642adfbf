"""The REST routers, one module per resource (FastAPI's "bigger applications" layout).

Each handler calls one service method and returns one of `services.views`' shapes.
"""

from __future__ import annotations

from fastapi import APIRouter

from kuzet.api.routers import (
    alerts,
    audit,
    auth,
    cameras,
    events,
    health,
    map,
    media,
    metrics,
    people,
    reports,
    stream,
    traffic,
    users,
    watchlists,
)

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    users.router,
    cameras.router,
    map.router,
    events.router,
    alerts.router,
    watchlists.router,
    people.router,
    media.router,
    audit.router,
    reports.router,
    stream.router,
    traffic.router,
    metrics.router,
]

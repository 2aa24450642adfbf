"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/api/health")
def get_health() -> dict[str, str]:
    """Liveness (the only route without authentication)."""
    return {"status": "ok"}

"""Public reports."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from kuzet.api.deps import Actor, Svc
from kuzet.governance.report import render_html

router = APIRouter(prefix="/api/reports", tags=["reports"])


@router.get("/transparency", response_model=None)
def transparency(
    svc: Svc,
    actor: Actor,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    fmt: Annotated[str, Query(alias="format", pattern="^(json|html)$")] = "json",
) -> dict[str, object] | HTMLResponse:
    """The transparency report for a period (aggregates only)."""
    rep = svc.reports.transparency(actor, start, end)
    if fmt == "html":
        return HTMLResponse(render_html(rep))
    return rep.to_json()

"""Public reports."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from kuzet.api.deps import Actor, Svc
from kuzet.governance.report import report_bytes

router = APIRouter(prefix="/api/reports", tags=["reports"])


@router.get(
    "/transparency",
    response_model=None,
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}}},
)
def transparency(
    svc: Svc,
    actor: Actor,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    fmt: Annotated[str, Query(alias="format", pattern="^(json|html|pdf)$")] = "json",
    download: Annotated[bool, Query()] = False,
) -> dict[str, object] | Response:
    """The transparency report for a period (aggregates only), as JSON, HTML or PDF; `download` saves it as a file."""
    rep = svc.reports.transparency(actor, start, end)
    if fmt == "json" and not download:
        return rep.to_json()
    content, media = report_bytes(rep, fmt)
    headers = (
        {"Content-Disposition": f'attachment; filename="kuzet-transparency-{start}-{end}.{fmt}"'} if download else None
    )
    return Response(content, media_type=media, headers=headers)

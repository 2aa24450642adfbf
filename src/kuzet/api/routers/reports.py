"""Public reports."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from kuzet.api.deps import Actor, Svc
from kuzet.core.i18n import DEFAULT, Language
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
    lang: Annotated[Language, Query(description="The language of the HTML and the PDF: kk, ru or en.")] = DEFAULT,
) -> dict[str, object] | Response:
    """The transparency report for a period (aggregates only), as JSON, HTML or PDF; `download` saves it as a file.

    HTML and PDF are in `lang` (Kazakh, Russian or English); JSON is data, the same in every language.
    """
    rep = svc.reports.transparency(actor, start, end)
    if fmt == "json" and not download:
        return rep.to_json()
    content, media = report_bytes(rep, fmt, lang)
    suffix = f"-{lang}" if fmt != "json" and lang != DEFAULT else ""
    headers = (
        {"Content-Disposition": f'attachment; filename="kuzet-transparency-{start}-{end}{suffix}.{fmt}"'}
        if download
        else None
    )
    return Response(content, media_type=media, headers=headers)

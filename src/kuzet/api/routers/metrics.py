"""Prometheus metrics of `kuzet run`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from kuzet.api.deps import Svc, current_user
from kuzet.runtime.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def get_metrics(request: Request, svc: Svc) -> PlainTextResponse:
    """Prometheus metrics of `kuzet run`: the `run.metrics_token` bearer token, or a signed-in admin or auditor."""
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else ""
    actor = None if svc.cameras.metrics_token_ok(bearer) else current_user(request)
    return PlainTextResponse(render(svc.cameras.metrics_status(actor)), media_type=CONTENT_TYPE)

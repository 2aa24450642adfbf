"""Candidate alerts and reviewers' decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kuzet.api.deps import Actor, Id, Svc
from kuzet.api.schemas import ReviewBody
from kuzet.services import views

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get("")
def list_alerts(
    svc: Svc, actor: Actor, status: Annotated[str, Query(pattern="^(pending|confirmed|rejected|all)$")] = "pending"
) -> list[dict[str, Any]]:
    """Alerts with score, threshold, legal basis and decisions (reviewers, auditors)."""
    return [views.alert_for_api(a) for a in svc.review.list(actor, status=None if status == "all" else status)]


@router.post("/{alert_id}/review")
def review_alert(alert_id: Id, body: ReviewBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Confirm or reject an alert (reviewers; two different reviewers confirm an identity alert)."""
    return {"alert_id": alert_id, "status": svc.review.decide(actor, alert_id, body.decision, reason=body.reason)}

"""Candidate alerts and reviewers' decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kuzet.api.deps import Actor, Id, Svc
from kuzet.api.schemas import MarkDecisionBody, ReviewBody
from kuzet.services import views

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get("")
def list_alerts(
    svc: Svc,
    actor: Actor,
    status: Annotated[str, Query(pattern="^(pending|confirmed|rejected|all)$")] = "pending",
    severity: Annotated[str | None, Query(pattern="^(high|medium|low)$")] = None,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    subject: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Alerts (newest first) with score, threshold, severity, legal basis and decisions (reviewers, auditors).

    Filtered by severity (the entry's category in the policy), camera and watched person or plate (part of it).
    """
    alerts = svc.review.list(
        actor, status=None if status == "all" else status, severity=severity, camera=camera, subject=subject,
        limit=limit, offset=offset,
    )  # fmt: skip
    return [views.alert_for_api(a) for a in alerts]


@router.get("/marks")
def list_marks(
    svc: Svc, actor: Actor, status: Annotated[str, Query(pattern="^(pending|all)$")] = "pending"
) -> list[dict[str, Any]]:
    """Wrong-match marks: those waiting for an approver, or every one kept (reviewers, approvers, auditors)."""
    return [views.mark_for_api(m) for m in svc.review.marks(actor, pending_only=status == "pending")]


@router.post("/{alert_id}/mark")
def decide_mark(alert_id: Id, body: MarkDecisionBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Approve or reject a reviewer's wrong-match mark (a second reviewer, not the one who marked it).

    Approved, the mark suppresses later hits of the same look on its entry; rejected, its appearance is destroyed.
    """
    status = svc.review.decide_mark(actor, alert_id, body.decision, reason=body.reason)
    return {"alert_id": alert_id, "mark": status}


@router.post("/{alert_id}/review")
def review_alert(alert_id: Id, body: ReviewBody, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Confirm or reject an alert (reviewers; two different reviewers confirm an identity alert).

    A rejection with `wrong_match` marks the face alert's appearance a wrong match of its entry.
    """
    status = svc.review.decide(actor, alert_id, body.decision, reason=body.reason, wrong_match=body.wrong_match)
    return {"alert_id": alert_id, "status": status}

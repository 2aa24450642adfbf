"""People in the loop: reviewers see candidate alerts and confirm or reject them, each with a reason."""

from __future__ import annotations

import builtins
from dataclasses import replace
from datetime import datetime

from kuzet.core.errors import InputError, KuzetError
from kuzet.core.i18n import Phrase
from kuzet.core.types import User
from kuzet.governance.approval import checked_status, decision_refusal
from kuzet.governance.policy import Policy, checked_severity
from kuzet.governance.review import (
    DECISIONS,
    MARK_DECISIONS,
    NO_REASON,
    PENDING,
    STATUSES,
    Alert,
    WrongMatchMark,
    review_refusal,
)
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork, Refused


def declared_rate(policy: Policy, alert: Alert) -> float | None:
    """The false-match rate `alert`'s category declares, if the alert was raised at the threshold derived from it.

    An alert raised under another threshold (an earlier policy or calibration) shows none: its rate is not known.
    """
    rate = policy.false_match_rate(alert.category)
    if rate is None or abs(policy.threshold(alert.category) - alert.threshold) > 1e-9:
        return None
    return rate


class ReviewService:
    """The review queue and reviewers' decisions."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def list(
        self,
        actor: User,
        *,
        status: str | None = PENDING,
        decided: bool = False,
        camera: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        severity: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[Alert]:
        """Alerts waiting for review (or with another status, or every decided one), with what a reviewer needs.

        Filtered by camera, watched person (part of the name or the plate), time and severity (the entry's category
        in the policy); viewing them is audited.

        Raises:
            InputError: An unknown status or severity.
        """
        self.uow.require(actor, "alerts.view")
        checked_status(status, STATUSES)
        policy = self.ctx.policy
        only: list[str] | None = None
        never: list[str] = []
        if severity is not None:
            only, never = policy.severity_filter(checked_severity(severity))
        with self.uow.read() as r:
            alerts = r.alerts.list(
                status=status, decided=decided, camera=camera, subject=subject, since=since, until=until,
                categories=only, not_categories=never, limit=limit, offset=offset,
            )  # fmt: skip
        alerts = [
            replace(a, severity=policy.severity(a.category), false_match_rate=declared_rate(policy, a)) for a in alerts
        ]
        details: dict[str, str | int | float | bool | None] = {
            "count": len(alerts), "status": "decided" if decided else status or "all"
        }  # fmt: skip
        if camera or subject or since or until or severity:
            details |= {"camera": camera, "subject_searched": bool(subject), "severity": severity, "filtered": True}
        self.uow.record(actor, "review.view", details=details)
        return alerts

    def decide(self, actor: User, alert_id: int, decision: str, *, reason: str, wrong_match: bool = False) -> str:
        """Confirm or reject an alert; it is confirmed once enough different reviewers confirm it.

        A face alert keeps its track's descriptors (encrypted) until it is decided. A reviewer who rejects it may
        mark it a wrong match (`wrong_match`): the appearance is then kept until the entry ends, and once a second
        reviewer approves the mark (`decide_mark`), the same look is not alerted for that entry again (each hit so
        suppressed is ledgered). Otherwise the descriptors are destroyed with the decision.

        Returns:
            The alert's status after the decision.
        """
        self.uow.require(actor, "alerts.review")
        if wrong_match and decision != "reject":
            raise InputError(
                Phrase("only a rejection can mark a wrong match, not {decision!r}", decision=decision),
                hint="reject the alert, saying why it is the wrong person",
            )
        obj = f"alert:{alert_id}"
        self.uow.screen(actor, "review.refused", obj, {"reason": reason})
        try:
            with self.uow.tx() as w:
                if decision not in DECISIONS:
                    raise KuzetError(Phrase("decision must be confirm or reject, not {decision!r}", decision=decision))
                if not reason.strip():
                    raise Refused(*NO_REASON)
                current, earlier = w.alerts.decision_facts(alert_id, actor.user_id)
                refusal = review_refusal(alert_id, current, earlier=earlier, reason=reason)
                if refusal is not None:
                    raise Refused(*refusal)
                status, confirmations, required = w.alerts.add_review(
                    alert_id, reviewer_id=actor.user_id, decision=decision, reason=reason, now=self.ctx.now()
                )
                details: dict[str, str | int | float | bool | None] = {
                    "confirmations": confirmations,
                    "required": required,
                }
                if wrong_match:
                    if not w.alerts.has_appearance(alert_id):
                        raise Refused(
                            Phrase("alert {alert} has no face appearance to remember", alert=alert_id),
                            hint="only face alerts can be marked a wrong match",
                        )
                    entry_id = w.alerts.mark_wrong_match(alert_id, by=actor.user_id, now=self.ctx.now(), reason=reason)
                    details |= {"wrong_match": True, "entry": entry_id}
                w.audit(actor, f"review.{decision}", object=obj, justification=reason.strip(), details=details)
                if status != PENDING:
                    w.audit(actor, f"alert.{status}", object=obj, details={"confirmations": confirmations})
                    w.alerts.forget_appearance(alert_id)  # decided: its descriptors go, unless marked a wrong match
        except Refused as r:
            raise self.uow.refuse(actor, "review.refused", object=obj, reason=r.reason, hint=r.hint) from None
        return status

    def marks(self, actor: User, *, pending_only: bool = True) -> builtins.list[WrongMatchMark]:
        """Wrong-match marks: those waiting for a second reviewer (default), or every one kept (viewing is audited)."""
        self.uow.require(actor, "alerts.marks")
        with self.uow.read() as r:
            marks = r.alerts.marks(pending_only=pending_only)
        self.uow.record(actor, "review.marks_view", details={"pending_only": pending_only, "count": len(marks)})
        return marks

    def decide_mark(self, actor: User, alert_id: int, decision: str, *, reason: str) -> str:
        """A second reviewer approves or rejects a reviewer's wrong-match mark (four eyes); returns its status.

        Approved, the mark suppresses later hits of the same look on its entry (each ledgered); rejected, the
        appearance is destroyed and those hits are alerted as before. The reviewer who marked cannot decide it.
        """
        self.uow.require(actor, "alerts.decide_mark")
        obj = f"alert:{alert_id}"
        self.uow.screen(actor, "review.mark_refused", obj, {"reason": reason})
        try:
            with self.uow.tx() as w:
                if decision not in MARK_DECISIONS:
                    raise KuzetError(
                        Phrase("a mark is approved or rejected, not {decision!r}", decision=decision),
                        hint="approve or reject",
                    )
                if not reason.strip():
                    raise Refused(
                        Phrase("deciding a wrong-match mark needs a reason"),
                        "say what you compared, e.g. --reason 'different ears and jaw; mark holds'",
                    )
                status, marked_by, entry_id = w.alerts.mark_facts(alert_id)
                refusal = decision_refusal(
                    Phrase("the wrong-match mark of alert {alert}", alert=alert_id),
                    status=status,
                    requester_id=marked_by,
                    decider_id=actor.user_id,
                    decider_name=actor.name,
                )
                if refusal is not None:
                    raise Refused(refusal.reason, refusal.hint)
                if decision == "approve":
                    w.alerts.approve_mark(alert_id, by=actor.user_id, now=self.ctx.now())
                else:
                    w.alerts.drop_mark(alert_id)
                w.audit(
                    actor,
                    "review.mark_approved" if decision == "approve" else "review.mark_rejected",
                    object=obj,
                    justification=reason.strip(),
                    details={"entry": entry_id},
                )
        except Refused as r:
            raise self.uow.refuse(actor, "review.mark_refused", object=obj, reason=r.reason, hint=r.hint) from None
        return "approved" if decision == "approve" else "rejected"

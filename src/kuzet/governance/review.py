"""Candidate alerts from watchlist hits and the people who confirm or reject them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from kuzet.core.i18n import Phrase

PENDING, CONFIRMED, REJECTED = "pending", "confirmed", "rejected"
STATUSES = (PENDING, CONFIRMED, REJECTED)
DECISIONS = ("confirm", "reject")


@dataclass(frozen=True, slots=True)
class NewAlert:
    """A watchlist hit before it is stored."""

    entry_id: int
    score: float
    threshold: float
    start: float
    end: float
    track_id: int
    snapshots: list[str]
    required_reviews: int
    originals: list[str] = field(default_factory=list)
    descriptors: NDArray[np.float32] | None = None
    """A face alert's track descriptors (S, D), kept encrypted until it is decided (or longer, as a wrong match)."""


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """One reviewer's recorded decision."""

    reviewer: str
    decision: str
    reason: str
    at: str


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert with what a reviewer needs: score and threshold, best shots, enrolled photo, legal basis."""

    alert_id: int
    status: str
    camera: str
    source: str
    start: float
    end: float
    score: float
    threshold: float
    snapshots: list[str]
    entry_id: int
    subject_name: str
    list_name: str
    category: str
    legal_basis: str
    reference: str
    authority: str
    entry_expires_at: str
    enrolled_photo: str
    required_reviews: int
    confirmations: int
    decisions: list[ReviewDecision]
    created_at: str
    severity: str = "high"
    """From the entry's category in the policy (set by the review service)."""
    false_match_rate: float | None = None
    """The false-match rate the entry's category declares, when the alert was raised at the threshold derived from
    it (set by the review service; None for an explicit threshold, a plate, or a policy changed since)."""


MARK_DECISIONS = ("approve", "reject")


@dataclass(frozen=True, slots=True)
class WrongMatchMark:
    """A reviewer's mark that an alert showed the wrong person, and its second person's approval.

    A mark suppresses later hits of the same look on its entry only once a second reviewer, who sees the same best
    shots and entry photo, approved it (four eyes, like confirmations); until then those hits are alerted.
    """

    alert_id: int
    entry_id: int
    marked_by: str
    marked_at: str
    reason: str
    approved_by: str | None
    approved_at: str | None

    @property
    def status(self) -> str:
        """`pending` until approved, then `approved` (a rejected mark is gone)."""
        return "approved" if self.approved_by is not None else "pending"


NO_REASON = (Phrase("a review needs a reason"), "say what you compared, e.g. --reason 'same scar, same ears'")
"""The refusal of a decision given without a reason (and what to do)."""


def review_refusal(alert_id: int, status: str, *, earlier: str | None, reason: str) -> tuple[str, str] | None:
    """Why a reviewer may not decide an alert now, with what to do (None when they may).

    `earlier` is this reviewer's own earlier decision on the alert, if any: one reviewer, one decision.
    """
    if not reason.strip():
        return NO_REASON
    if status != PENDING:
        return Phrase(
            "alert {alert} is already {status}", alert=alert_id, status=Phrase(status)
        ), "only pending alerts are reviewed"
    if earlier is not None:
        return (
            Phrase("you already reviewed alert {alert} ({decision})", alert=alert_id, decision=Phrase(earlier)),
            "a different reviewer must give the next decision",
        )
    return None


def outcome(decision: str, *, confirmations: int, required: int) -> str:
    """An alert's status after a decision: one rejection rejects; `required` confirmations confirm."""
    if decision == "reject":
        return REJECTED
    return CONFIRMED if confirmations >= required else PENDING

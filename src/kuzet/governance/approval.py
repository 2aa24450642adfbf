"""The four-eyes rule, one place for every kind of request: a second person decides, and only pending requests.

Watchlist entries and enrolments are both requests that match nobody until someone other than their requester,
holding the approver role, approves them. The repositories load the row inside the deciding transaction and ask
here, so two decisions on one request cannot both pass (the second sees the first's outcome).
"""

from __future__ import annotations

from dataclasses import dataclass

from kuzet.core.errors import InputError
from kuzet.core.i18n import Phrase

PENDING, APPROVED, REJECTED, EXPIRED, WITHDRAWN = "pending", "approved", "rejected", "expired", "withdrawn"
STATUSES = (PENDING, APPROVED, REJECTED, EXPIRED, WITHDRAWN)
"""Every status of a request (a watchlist entry or an enrolment), defined here only: listings check against it."""


def checked_status(status: str | None, allowed: tuple[str, ...]) -> str | None:
    """A listing's status filter, refused when unknown (an empty list would read as "there are none").

    Raises:
        InputError: `status` is not one of `allowed`.
    """
    if status is not None and status not in allowed:
        raise InputError(f"unknown status {status!r}", hint=f"use one of {', '.join(allowed)}")
    return status


@dataclass(frozen=True, slots=True)
class DecisionRefusal:
    """Why a decision on a request is refused."""

    reason: str
    hint: str = "see docs/governance.md"


def decision_refusal(
    what: str, *, status: str, requester_id: int | None, decider_id: int, decider_name: str
) -> DecisionRefusal | None:
    """Why `decider` may not approve or reject request `what` (e.g. "entry 4"), or None when they may."""
    if status != PENDING:
        return DecisionRefusal(
            Phrase("{what} is {status}, not pending", what=what, status=Phrase(status)),
            "only pending requests are decided",
        )
    if requester_id == decider_id:
        return DecisionRefusal(
            Phrase("{decider} requested {what} and cannot also approve or reject it", decider=decider_name, what=what),
            "a different user with the approver role must decide",
        )
    return None

"""Enrolment of consenting people, governed like a watchlist entry.

An enrolment needs a consent record (the reference of the signed form), a scope of cameras (camera names, or the
purposes cameras state), and an expiry within the policy's maximum; a second person with the approver role must
approve it before the person is recognised anywhere. Pending, rejected and expired enrolments match nobody, and a
person is reported only on cameras within their scope: elsewhere their track counts as unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from kuzet.core.i18n import Phrase
from kuzet.governance.policy import Policy
from kuzet.governance.screening import Refusal, fold

ALL_CAMERAS = "*"
MAX_CONSENT = 500
"""Characters a consent record (the reference of the signed form, not its text) may have at the most."""
_CAMERA = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    """What an operator asks for; every field is checked against the policy before any photo is processed."""

    name: str
    consent: str
    scope: tuple[str, ...] = (ALL_CAMERAS,)
    expires: date | None = None


def resolved_expiry(req: EnrolmentRequest, policy: Policy, *, today: date) -> date:
    """The enrolment's expiry: the one asked for, else the policy's default length."""
    return req.expires or today + timedelta(days=policy.model.enrolment.default_days)


def check_enrolment(req: EnrolmentRequest, policy: Policy, *, today: date) -> Refusal | None:
    """The first policy problem with an enrolment request, or None when it may be filed."""
    if not req.consent.strip():
        return Refusal(
            "consent",
            req.consent,
            Phrase("an enrolment needs a consent record: the reference of the signed consent form"),
        )
    if len(req.consent) > MAX_CONSENT:  # before screening: nothing is done with an over-long text
        return Refusal(
            "consent",
            req.consent[:100],
            Phrase(
                "the consent record has {length} characters, more than the {most} allowed; "
                "give the reference of the signed consent form, not its text",
                length=len(req.consent),
                most=MAX_CONSENT,
            ),
        )
    if not req.scope or any(not s.strip() or len(s) > 200 for s in req.scope):
        return Refusal("scope", ",".join(req.scope), Phrase("each scope entry is a camera name or a camera purpose"))
    fields = {"name": req.name, "consent": req.consent}
    fields.update({f"scope {i + 1}": s for i, s in enumerate(req.scope)})
    refusal = policy.screener.screen_all(fields)
    if refusal is not None:
        return refusal
    expires = resolved_expiry(req, policy, today=today)
    if expires <= today:
        return Refusal("expires", expires.isoformat(), Phrase("the expiry date must be in the future"))
    latest = today + timedelta(days=policy.model.enrolment.max_days)
    if expires > latest:
        return Refusal(
            "expires",
            expires.isoformat(),
            Phrase(
                "expiry {expires} is beyond the {days}-day maximum for enrolments (latest {latest}); "
                "renew with a new enrolment later",
                expires=expires,
                days=policy.model.enrolment.max_days,
                latest=latest,
            ),
        )
    return None


def in_scope(scope: list[str], *, camera: str, purpose: str) -> bool:
    """Whether a camera (by its name, or the purpose it states) lies within an enrolment's scope."""
    folded_purpose = fold(purpose) if purpose.strip() else ""
    for entry in scope:
        if entry in (ALL_CAMERAS, camera):
            return True
        if folded_purpose and not _CAMERA.match(entry) and fold(entry) == folded_purpose:
            return True
        if folded_purpose and entry.startswith("purpose:") and fold(entry[8:]) == folded_purpose:
            return True
    return False

"""Watchlist entries: requested with a legal basis, approved by someone else, destroyed on expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from kuzet.core.errors import KuzetError
from kuzet.core.i18n import Phrase
from kuzet.governance.policy import Policy
from kuzet.governance.screening import Refusal

MAX_LENGTHS = {"list_name": 100, "subject_name": 200, "category": 64, "legal_basis": 64, "reference": 200,
               "authority": 200, "note": 2000}  # fmt: skip
"""Characters each text field of a request may have at the most (the API's form takes its limits from here)."""


def too_long(req: WatchlistRequest) -> Refusal | None:
    """The first text field of a request longer than its limit (`MAX_LENGTHS`), else None."""
    for field, most in MAX_LENGTHS.items():
        value: str = getattr(req, field)
        if len(value) > most:
            return Refusal(
                field,
                value[:100],
                Phrase("{field} has {length} characters, more than the {most} allowed", field=field,
                       length=len(value), most=most),
            )  # fmt: skip
    return None


@dataclass(frozen=True, slots=True)
class WatchlistRequest:
    """What a requester asks for; every field is checked against the policy."""

    list_name: str
    subject_name: str
    category: str
    legal_basis: str
    reference: str
    authority: str
    expires: date
    note: str = ""

    @classmethod
    def from_text(
        cls,
        *,
        list_name: str,
        name: str,
        category: str,
        legal_basis: str,
        reference: str,
        authority: str,
        expires: str,
        note: str = "",
    ) -> WatchlistRequest:
        """A request from the text a person typed (CLI options or form fields); `expires` is YYYY-MM-DD."""
        return cls(
            list_name=list_name,
            subject_name=name,
            category=category,
            legal_basis=legal_basis,
            reference=reference,
            authority=authority,
            expires=parse_expiry(expires),
            note=note,
        )


PLATE_MODEL = "plate-text"
"""`model` of a plate entry's template row: the normalised plate text, encrypted."""


@dataclass(frozen=True, slots=True)
class WatchlistEntry:
    """A watchlist entry as shown to people (never its template)."""

    entry_id: int
    list_name: str
    subject_name: str
    kind: str
    category: str
    legal_basis: str
    reference: str
    authority: str
    note: str
    expires_at: str
    status: str
    requester: str
    approver: str
    decision_reason: str
    photo: str
    created_at: str
    withdrawn_by: str = ""
    withdraw_reason: str = ""


KINDS = {"face": Phrase("faces"), "plate": Phrase("plates")}
"""What an entry of each kind watches, as a refusal names it."""


def expiry_instant(day: date) -> datetime:
    """An entry expiring on `day` stops matching at 00:00 UTC that day."""
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def check_request(req: WatchlistRequest, policy: Policy, *, today: date, kind: str = "face") -> Refusal | None:
    """The first policy problem with a request for a `kind` ("face" or "plate") entry, or None when it may be filed."""
    refusal = too_long(req)  # before screening: nothing is done with an over-long text
    if refusal is not None:
        return refusal
    screener = policy.screener
    refusal = screener.screen_category(req.category)
    if refusal is not None:
        return refusal
    category = policy.category(req.category)
    if category is None:
        allowed = ", ".join(sorted(policy.model.categories))
        return Refusal(
            "category",
            req.category,
            Phrase("category {category!r} is not allowed; allowed: {allowed}", category=req.category, allowed=allowed),
        )
    if category.kind != kind:
        return Refusal(
            "category",
            req.category,
            Phrase(
                "category {category!r} watches {kind}, not {other}",
                category=req.category,
                kind=KINDS.get(category.kind, category.kind),
                other=KINDS.get(kind, kind),
            ),
        )
    if not req.legal_basis.strip() or not req.reference.strip() or not req.authority.strip():
        return Refusal(
            "legal_basis",
            req.legal_basis,
            Phrase("a legal basis needs its type, a reference and the issuing authority"),
        )
    if req.legal_basis not in policy.model.legal_basis_types:
        allowed = ", ".join(policy.model.legal_basis_types)
        return Refusal(
            "legal_basis",
            req.legal_basis,
            Phrase("legal basis {basis!r} is not accepted; use: {allowed}", basis=req.legal_basis, allowed=allowed),
        )
    if req.expires <= today:
        return Refusal("expires", req.expires.isoformat(), Phrase("the expiry date must be in the future"))
    latest = today + timedelta(days=category.max_days)
    if req.expires > latest:
        return Refusal(
            "expires",
            req.expires.isoformat(),
            Phrase(
                "expiry {expires} is beyond the {days}-day maximum for {category} (latest {latest}); "
                "renew with a new request later",
                expires=req.expires,
                days=category.max_days,
                category=req.category,
                latest=latest,
            ),
        )
    for field, value in (
        ("list", req.list_name),
        ("name", req.subject_name),
        ("note", req.note),
        ("reference", req.reference),
        ("authority", req.authority),
    ):
        refusal = screener.screen(field, value)
        if refusal is not None:
            return refusal
    if not req.list_name.strip() or not req.subject_name.strip():
        return Refusal("name", req.subject_name, Phrase("the list and the person's name must not be empty"))
    return None


def parse_expiry(text: str, *, option: str = "--expires") -> date:
    """A YYYY-MM-DD date given to `option`, or a clear error naming it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise KuzetError(f"{option} {text!r} is not a date", hint="use YYYY-MM-DD, e.g. 2027-03-31") from None

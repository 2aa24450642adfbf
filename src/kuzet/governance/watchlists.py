"""Watchlist entries: requested with a legal basis, approved by someone else, destroyed on expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.core.errors import KuzetError, NotFoundError
from kuzet.core.timeutil import iso_utc
from kuzet.core.types import Identity
from kuzet.governance.policy import Policy
from kuzet.governance.screening import Refusal
from kuzet.store.crypto import DataCipher
from kuzet.store.models import UserRow, WatchlistEntryRow, WatchlistTemplateRow

PENDING, APPROVED, REJECTED, EXPIRED = "pending", "approved", "rejected", "expired"


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


def expiry_instant(day: date) -> datetime:
    """An entry expiring on `day` stops matching at 00:00 UTC that day."""
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def check_request(req: WatchlistRequest, policy: Policy, *, today: date, kind: str = "face") -> Refusal | None:
    """The first policy problem with a request for a `kind` ("face" or "plate") entry, or None when it may be filed."""
    screener = policy.screener
    refusal = screener.screen_category(req.category)
    if refusal is not None:
        return refusal
    category = policy.category(req.category)
    if category is None:
        allowed = ", ".join(sorted(policy.model.categories))
        return Refusal("category", req.category, f"category {req.category!r} is not allowed; allowed: {allowed}")
    if category.kind != kind:
        return Refusal("category", req.category, f"category {req.category!r} is for {category.kind}s, not {kind}s")
    if not req.legal_basis.strip() or not req.reference.strip() or not req.authority.strip():
        return Refusal(
            "legal_basis", req.legal_basis, "a legal basis needs its type, a reference and the issuing authority"
        )
    if req.legal_basis not in policy.model.legal_basis_types:
        allowed = ", ".join(policy.model.legal_basis_types)
        return Refusal(
            "legal_basis", req.legal_basis, f"legal basis {req.legal_basis!r} is not accepted; use: {allowed}"
        )
    if req.expires <= today:
        return Refusal("expires", req.expires.isoformat(), "the expiry date must be in the future")
    latest = today + timedelta(days=category.max_days)
    if req.expires > latest:
        return Refusal(
            "expires",
            req.expires.isoformat(),
            f"expiry {req.expires} is beyond the {category.max_days}-day maximum for {req.category} "
            f"(latest {latest}); renew with a new request later",
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
        return Refusal("name", req.subject_name, "the list and the person's name must not be empty")
    return None


class WatchlistRepository:
    """Watchlist entries and their templates within one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        req: WatchlistRequest,
        *,
        requester_id: int,
        template: bytes,
        model: str,
        photo: str,
        sha: str,
        cipher: DataCipher,
        kind: str = "face",
    ) -> int:
        """Store a new pending entry with its template (face descriptor or plate text, encrypted); returns its id."""
        row = WatchlistEntryRow(
            list_name=req.list_name.strip(),
            subject_name=req.subject_name.strip(),
            kind=kind,
            category=req.category,
            legal_basis=req.legal_basis,
            reference=req.reference.strip(),
            authority=req.authority.strip(),
            note=req.note.strip(),
            expires_at=expiry_instant(req.expires),
            status=PENDING,
            requester_id=requester_id,
            approver_id=None,
            decision_reason="",
            photo=photo,
            photo_sha256=sha,
            created_at=datetime.now(UTC),
            decided_at=None,
        )
        self.session.add(row)
        self.session.flush()
        self.session.add(
            WatchlistTemplateRow(
                entry_id=row.id,
                model=model,
                vector=cipher.encrypt(template, context=f"watchlist:{row.id}"),
            )
        )
        self.session.flush()
        return row.id

    def get_row(self, entry_id: int) -> WatchlistEntryRow:
        """The entry row, or NotFoundError."""
        row = self.session.get(WatchlistEntryRow, entry_id)
        if row is None:
            raise NotFoundError(f"watchlist entry {entry_id} does not exist", hint="see `kuzet watchlist show`")
        return row

    def destroy_templates(self, entry_id: int) -> int:
        """Delete an entry's templates; returns how many."""
        rows = list(self.session.scalars(select(WatchlistTemplateRow).where(WatchlistTemplateRow.entry_id == entry_id)))
        for r in rows:
            self.session.delete(r)
        self.session.flush()
        return len(rows)

    def due_for_expiry(self, now: datetime) -> list[WatchlistEntryRow]:
        """Pending or approved entries whose expiry has passed."""
        return list(
            self.session.scalars(
                select(WatchlistEntryRow).where(
                    WatchlistEntryRow.status.in_([PENDING, APPROVED]), WatchlistEntryRow.expires_at <= now
                )
            )
        )

    def _active(self, *, kind: str, model: str, now: datetime) -> list[tuple[WatchlistEntryRow, bytes]]:
        """Approved, unexpired entries of a kind with their (encrypted) template, oldest first."""
        rows = self.session.execute(
            select(WatchlistEntryRow, WatchlistTemplateRow.vector)
            .join(WatchlistTemplateRow, WatchlistTemplateRow.entry_id == WatchlistEntryRow.id)
            .where(
                WatchlistEntryRow.status == APPROVED,
                WatchlistEntryRow.expires_at > now,
                WatchlistEntryRow.kind == kind,
                WatchlistTemplateRow.model == model,
            )
            .order_by(WatchlistEntryRow.id)
        ).all()
        return [(entry, blob) for entry, blob in rows]

    def active_plates(self, *, now: datetime, policy: Policy, cipher: DataCipher) -> dict[str, Identity]:
        """Approved, unexpired plate entries: normalised plate text -> the entry, as a watchlist identity."""
        out: dict[str, Identity] = {}
        for entry, blob in self._active(kind="plate", model=PLATE_MODEL, now=now):
            category = policy.category(entry.category)
            if category is None:
                continue
            plate = cipher.decrypt(blob, context=f"watchlist:{entry.id}").decode()
            out[plate] = Identity(person_id=entry.id, name=entry.subject_name, kind="watchlist", threshold=1.0)
        return out

    def active_identities(
        self, *, model: str, now: datetime, policy: Policy, cipher: DataCipher
    ) -> tuple[list[Identity], list[bytes], list[int]]:
        """Approved, unexpired face entries: identities, decrypted template bytes and the owner index of each."""
        rows = self._active(kind="face", model=model, now=now)
        people: list[Identity] = []
        index: dict[int, int] = {}
        blobs: list[bytes] = []
        owners: list[int] = []
        for entry, blob in rows:
            category = policy.category(entry.category)
            if category is None:
                continue  # the category was removed from the policy: its entries stop matching
            if entry.id not in index:
                index[entry.id] = len(people)
                people.append(
                    Identity(
                        person_id=entry.id, name=entry.subject_name, kind="watchlist", threshold=category.threshold
                    )
                )
            blobs.append(cipher.decrypt(blob, context=f"watchlist:{entry.id}"))
            owners.append(index[entry.id])
        return people, blobs, owners

    def list(self, *, status: str | None = None) -> list[WatchlistEntry]:
        """Entries, newest first."""
        query = select(WatchlistEntryRow).order_by(WatchlistEntryRow.id.desc())
        if status:
            query = query.where(WatchlistEntryRow.status == status)
        names = {uid: uname for uid, uname in self.session.execute(select(UserRow.id, UserRow.name))}
        return [
            WatchlistEntry(
                entry_id=r.id,
                list_name=r.list_name,
                subject_name=r.subject_name,
                kind=r.kind,
                category=r.category,
                legal_basis=r.legal_basis,
                reference=r.reference,
                authority=r.authority,
                note=r.note,
                expires_at=iso_utc(r.expires_at),
                status=r.status,
                requester=names.get(r.requester_id, "?"),
                approver=names.get(r.approver_id, "") if r.approver_id else "",
                decision_reason=r.decision_reason,
                photo=r.photo,
                created_at=iso_utc(r.created_at),
            )
            for r in self.session.scalars(query)
        ]


def parse_expiry(text: str, *, option: str = "--expires") -> date:
    """A YYYY-MM-DD date given to `option`, or a clear error naming it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise KuzetError(f"{option} {text!r} is not a date", hint="use YYYY-MM-DD, e.g. 2027-03-31") from None

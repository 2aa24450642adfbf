"""Watchlist entries and their encrypted templates (face descriptors or plate texts)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kuzet.core.errors import NotFoundError
from kuzet.core.i18n import Phrase
from kuzet.core.timeutil import aware, iso_utc
from kuzet.core.types import Identity
from kuzet.governance.approval import APPROVED, EXPIRED, PENDING, WITHDRAWN
from kuzet.governance.policy import Policy
from kuzet.governance.watchlists import PLATE_MODEL, WatchlistEntry, WatchlistRequest, expiry_instant
from kuzet.store.crypto import DataCipher, blob_key_id
from kuzet.store.models import AppearanceRow, UserRow, WatchlistEntryRow, WatchlistTemplateRow
from kuzet.store.repositories.changes import ChangeFeed


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
        now: datetime,
        kind: str = "face",
        extra: Mapping[str, bytes] | None = None,
    ) -> int:
        """Store a new pending entry with its template (face descriptor or plate text, encrypted); returns its id.

        `extra`: the face templates of further models (`face_fusion`), by model.
        """
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
            created_at=now,
            decided_at=None,
        )
        self.session.add(row)
        self.session.flush()
        for name, blob in {model: template, **(extra or {})}.items():
            self.add_template(row.id, model=name, template=blob, cipher=cipher)
        self.session.flush()
        return row.id

    def pending_same(
        self, req: WatchlistRequest, *, requester_id: int, kind: str, sha: str, now: datetime
    ) -> int | None:
        """The id of a pending, unexpired entry `requester_id` filed for the same request, if any.

        The same request: the same list and person, the same photo or plate (`sha`, as `add` stores it), category
        and legal basis (type, reference, authority).
        """
        return self.session.scalar(
            select(WatchlistEntryRow.id)
            .where(
                WatchlistEntryRow.status == PENDING,
                WatchlistEntryRow.expires_at > now,
                WatchlistEntryRow.requester_id == requester_id,
                WatchlistEntryRow.list_name == req.list_name.strip(),
                WatchlistEntryRow.subject_name == req.subject_name.strip(),
                WatchlistEntryRow.kind == kind,
                WatchlistEntryRow.photo_sha256 == sha,
                WatchlistEntryRow.category == req.category,
                WatchlistEntryRow.legal_basis == req.legal_basis,
                WatchlistEntryRow.reference == req.reference.strip(),
                WatchlistEntryRow.authority == req.authority.strip(),
            )
            .order_by(WatchlistEntryRow.id)
            .limit(1)
        )

    def lacking(self, models: tuple[str, ...]) -> list[tuple[int, list[str], str]]:
        """Pending and approved face entries lacking templates of some of `models`: (id, models lacking, photo)."""
        have: dict[int, set[str]] = {}
        pairs = select(WatchlistTemplateRow.entry_id, WatchlistTemplateRow.model).distinct()
        for entry_id, model in self.session.execute(pairs):
            have.setdefault(entry_id, set()).add(model)
        rows = self.session.scalars(
            select(WatchlistEntryRow)
            .where(WatchlistEntryRow.kind == "face", WatchlistEntryRow.status.in_([PENDING, APPROVED]))
            .order_by(WatchlistEntryRow.id)
        )
        out = []
        for row in rows:
            missing = [m for m in models if m not in have.get(row.id, set())]
            if missing and row.photo:
                out.append((row.id, missing, row.photo))
        return out

    def add_model_template(
        self, entry_id: int, *, model: str, template: bytes, photo: str, cipher: DataCipher, now: datetime
    ) -> bool:
        """Add the template of a face model an entry lacks, made from its stored photo; whether it was added.

        Checked inside the writing transaction: the entry is pending or approved and unexpired, `photo` is still its
        photo, and `model` still has no template of it.
        """
        row = self.session.get(WatchlistEntryRow, entry_id)
        if row is None or row.status not in (PENDING, APPROVED) or aware(row.expires_at) <= now or row.photo != photo:
            return False
        present = select(func.count()).where(
            WatchlistTemplateRow.entry_id == entry_id, WatchlistTemplateRow.model == model
        )
        if self.session.scalar(present):
            return False
        self.add_template(entry_id, model=model, template=template, cipher=cipher)
        ChangeFeed(self.session).note(f"watchlist:{entry_id}")
        self.session.flush()
        return True

    def add_template(self, entry_id: int, *, model: str, template: bytes, cipher: DataCipher) -> None:
        """Store one more template of an entry (encrypted), e.g. another face model's."""
        self.session.add(
            WatchlistTemplateRow(
                entry_id=entry_id, model=model, vector=cipher.encrypt(template, context=f"watchlist:{entry_id}")
            )
        )

    def get_row(self, entry_id: int) -> WatchlistEntryRow:
        """The entry row, or NotFoundError."""
        row = self.session.get(WatchlistEntryRow, entry_id)
        if row is None:
            raise NotFoundError(
                Phrase("watchlist entry {entry} does not exist", entry=entry_id), hint="see `kuzet watchlist show`"
            )
        return row

    def destroy_templates(self, entry_id: int) -> int:
        """Delete an entry's templates, and the appearances kept for its alerts; returns how many templates."""
        rows = list(self.session.scalars(select(WatchlistTemplateRow).where(WatchlistTemplateRow.entry_id == entry_id)))
        for r in rows:
            self.session.delete(r)
        self.session.execute(delete(AppearanceRow).where(AppearanceRow.entry_id == entry_id))  # wrong matches too
        ChangeFeed(self.session).note(f"watchlist:{entry_id}")
        self.session.flush()
        return len(rows)

    def template_count(self) -> int:
        """How many watchlist templates are stored."""
        return int(self.session.scalar(select(func.count()).select_from(WatchlistTemplateRow)) or 0)

    def reencrypt(self, ring: DataCipher) -> int:
        """Re-encrypt every template (faces and plates) not under the ring's active key; returns how many."""
        n = 0
        for row in self.session.scalars(select(WatchlistTemplateRow)):
            if blob_key_id(row.vector) != ring.active:
                context = f"watchlist:{row.entry_id}"
                row.vector = ring.encrypt(ring.decrypt(row.vector, context=context), context=context)
                n += 1
        return n

    def key_ids(self) -> set[str]:
        """Ids of the data keys the templates are encrypted with."""
        return {blob_key_id(v) for v in self.session.scalars(select(WatchlistTemplateRow.vector))}

    def decision_facts(self, entry_id: int) -> tuple[str, int, str]:
        """(status, requester id, category) of an entry, read inside the deciding transaction."""
        row = self.get_row(entry_id)
        return row.status, row.requester_id, row.category

    def decide(self, entry_id: int, *, status: str, approver_id: int, reason: str, now: datetime) -> tuple[int, str]:
        """Approve or reject an entry; a rejection destroys its template and lets go of its photo.

        Returns:
            Templates destroyed, and the photo (media path) to delete ("" when none).
        """
        row = self.get_row(entry_id)
        destroyed, photo = 0, ""
        if status != APPROVED:
            destroyed = self.destroy_templates(entry_id)
            photo, row.photo = row.photo, ""
        row.status = status
        ChangeFeed(self.session).note(f"watchlist:{entry_id}")
        row.approver_id = approver_id
        row.decision_reason = reason
        row.decided_at = now
        return destroyed, photo

    def plate_blobs(self, entry_ids: list[int]) -> dict[int, bytes]:
        """The encrypted plate text of those of `entry_ids` that are plate entries with a template left."""
        if not entry_ids:
            return {}
        query = select(WatchlistTemplateRow.entry_id, WatchlistTemplateRow.vector).where(
            WatchlistTemplateRow.entry_id.in_(entry_ids), WatchlistTemplateRow.model == PLATE_MODEL
        )
        return {entry_id: blob for entry_id, blob in self.session.execute(query)}

    def withdraw(self, entry_id: int, *, by: int, reason: str, now: datetime) -> tuple[int, str]:
        """Withdraw an entry before it expires: it stops matching, its templates are destroyed.

        Returns:
            Templates destroyed, and the photo (media path) to delete ("" when none).
        """
        row = self.get_row(entry_id)
        destroyed = self.destroy_templates(entry_id)
        photo, row.photo = row.photo, ""
        row.status = WITHDRAWN
        row.withdrawn_by_id = by
        row.withdrawn_at = now
        row.withdraw_reason = reason
        return destroyed, photo

    def expire_due(self, now: datetime) -> list[tuple[int, int, str, datetime]]:
        """Expire every entry past its expiry (templates destroyed).

        Returns:
            For each: its id, templates destroyed, the photo (media path) to delete, and when it expired.
        """
        out = []
        for row in self.due_for_expiry(now):
            destroyed = self.destroy_templates(row.id)
            photo, row.photo = row.photo, ""
            row.status = EXPIRED
            row.decided_at = now
            out.append((row.id, destroyed, photo, row.expires_at))
        return out

    def photo(self, entry_id: int) -> str:
        """An entry's photo (media path); "" once destroyed, or when there is no such entry."""
        row = self.session.get(WatchlistEntryRow, entry_id)
        return "" if row is None else row.photo

    def plain_photos(self) -> list[tuple[int, str]]:
        """Entries whose photo an older kuzet stored unencrypted: (id, media path)."""
        rows = self.session.execute(select(WatchlistEntryRow.id, WatchlistEntryRow.photo))
        return [(i, rel) for i, rel in rows if rel and not rel.endswith(".enc")]

    def replace_photo(self, entry_id: int, old: str, new: str) -> bool:
        """Point an entry at another photo file if it still has `old`; whether it did."""
        row = self.session.get(WatchlistEntryRow, entry_id)
        if row is None or row.photo != old:
            return False
        row.photo = new
        return True

    def active(self, entry_id: int, now: datetime) -> bool:
        """Whether an entry is approved and unexpired at `now`."""
        row = self.session.get(WatchlistEntryRow, entry_id)
        return row is not None and row.status == APPROVED and aware(row.expires_at) > now

    def category_of(self, entry_id: int) -> str | None:
        """An entry's category (None when there is no such entry)."""
        row = self.session.get(WatchlistEntryRow, entry_id)
        return None if row is None else row.category

    def all_identities(
        self, *, model: str, policy: Policy, cipher: DataCipher
    ) -> tuple[list[Identity], list[bytes], list[int]]:
        """Every face entry with a template of `model`, whatever its status: identities, decrypted templates, owners.

        An entry whose category the policy no longer lists keeps the policy's default threshold.
        """
        rows = self.session.execute(
            select(
                WatchlistEntryRow.id,
                WatchlistEntryRow.subject_name,
                WatchlistEntryRow.category,
                WatchlistTemplateRow.vector,
            )
            .join(WatchlistTemplateRow, WatchlistTemplateRow.entry_id == WatchlistEntryRow.id)
            .where(WatchlistEntryRow.kind == "face", WatchlistTemplateRow.model == model)
            .order_by(WatchlistEntryRow.id)
        )
        people: list[Identity] = []
        blobs: list[bytes] = []
        for entry_id, name, category, blob in rows:
            threshold = policy.threshold(category) if policy.category(category) is not None else None
            people.append(Identity(person_id=entry_id, name=name, kind="watchlist", threshold=threshold))
            blobs.append(cipher.decrypt(blob, context=f"watchlist:{entry_id}"))
        return people, blobs, list(range(len(people)))

    def due_for_expiry(self, now: datetime) -> list[WatchlistEntryRow]:
        """Pending or approved entries whose expiry has passed."""
        return list(
            self.session.scalars(
                select(WatchlistEntryRow).where(
                    WatchlistEntryRow.status.in_([PENDING, APPROVED]), WatchlistEntryRow.expires_at <= now
                )
            )
        )

    def _active(
        self, *, kind: str, model: str, now: datetime, only: set[int] | None = None
    ) -> list[tuple[WatchlistEntryRow, bytes]]:
        """Approved, unexpired entries of a kind with their (encrypted) template, oldest first (just `only`)."""
        query = (
            select(WatchlistEntryRow, WatchlistTemplateRow.vector)
            .join(WatchlistTemplateRow, WatchlistTemplateRow.entry_id == WatchlistEntryRow.id)
            .where(
                WatchlistEntryRow.status == APPROVED,
                WatchlistEntryRow.expires_at > now,
                WatchlistEntryRow.kind == kind,
                WatchlistTemplateRow.model == model,
            )
            .order_by(WatchlistEntryRow.id)
        )
        if only is not None:
            query = query.where(WatchlistEntryRow.id.in_(sorted(only)))
        return [(entry, blob) for entry, blob in self.session.execute(query).all()]

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
        self, *, model: str, now: datetime, policy: Policy, cipher: DataCipher, only: set[int] | None = None
    ) -> tuple[list[Identity], list[bytes], list[int]]:
        """Approved, unexpired face entries (just `only`): identities, decrypted templates and each one's owner."""
        rows = self._active(kind="face", model=model, now=now, only=only)
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
                        person_id=entry.id,
                        name=entry.subject_name,
                        kind="watchlist",
                        threshold=policy.threshold(entry.category),
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
                withdrawn_by=names.get(r.withdrawn_by_id, "") if r.withdrawn_by_id else "",
                withdraw_reason=r.withdraw_reason,
            )
            for r in self.session.scalars(query)
        ]

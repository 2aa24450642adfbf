"""Candidate alerts from watchlist hits, and the reviewers' decisions on them."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kuzet.core.errors import NotFoundError
from kuzet.core.i18n import Phrase
from kuzet.core.timeutil import iso_utc
from kuzet.governance.review import (
    PENDING,
    Alert,
    NewAlert,
    ReviewDecision,
    WrongMatchMark,
    outcome,
)
from kuzet.store.crypto import DataCipher, blob_key_id
from kuzet.store.models import AlertRow, AppearanceRow, ReviewRow, UserRow, WatchlistEntryRow


class AlertRepository:
    """Alerts and reviews within one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, alert: NewAlert, *, run_id: int, camera: str, source: str, now: datetime) -> int:
        """Store a pending alert; returns its id."""
        row = AlertRow(
            run_id=run_id,
            entry_id=alert.entry_id,
            camera=camera,
            score=alert.score,
            threshold=alert.threshold,
            start=alert.start,
            end=alert.end,
            track_id=alert.track_id,
            snapshots=json.dumps(alert.snapshots),
            originals=json.dumps(alert.originals),
            source=source,
            status=PENDING,
            required_reviews=alert.required_reviews,
            created_at=now,
            decided_at=None,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def keep_appearance(
        self, alert_id: int, entry_id: int, descriptors: NDArray[np.float32], *, model: str, cipher: DataCipher
    ) -> None:
        """Keep the descriptors of an alert's track (encrypted) while people review it."""
        rows = np.ascontiguousarray(descriptors, "<f4")
        self.session.add(
            AppearanceRow(
                alert_id=alert_id,
                entry_id=entry_id,
                model=model,
                dim=int(rows.shape[1]),
                vectors=cipher.encrypt(rows.tobytes(), context=f"appearance:{alert_id}"),
                wrong_match=False,
            )
        )

    def has_appearance(self, alert_id: int) -> bool:
        """Whether an alert's track appearance is kept (face alerts until they are decided)."""
        return self.session.scalar(select(AppearanceRow.id).where(AppearanceRow.alert_id == alert_id)) is not None

    def mark_wrong_match(self, alert_id: int, *, by: int, now: datetime, reason: str) -> int:
        """Keep an alert's appearance as a wrong match of its entry, pending a second person; returns the entry."""
        row = self.session.scalar(select(AppearanceRow).where(AppearanceRow.alert_id == alert_id))
        if row is None:
            raise NotFoundError(Phrase("alert {alert} has no face appearance to remember", alert=alert_id))
        row.wrong_match, row.marked_by_id, row.marked_at, row.mark_reason = True, by, now, reason.strip()
        return row.entry_id

    def mark_facts(self, alert_id: int) -> tuple[str, int | None, int]:
        """(status `pending`/`approved`, marking reviewer's id, entry id) of an alert's wrong-match mark.

        Raises:
            NotFoundError: The alert has no wrong-match mark (never marked, or its mark was rejected).
        """
        row = self.session.scalar(
            select(AppearanceRow).where(AppearanceRow.alert_id == alert_id, AppearanceRow.wrong_match.is_(True))
        )
        if row is None:
            raise NotFoundError(
                Phrase("alert {alert} has no wrong-match mark", alert=alert_id), hint="see `kuzet review marks`"
            )
        status = "approved" if row.mark_approved_by_id is not None else PENDING
        return status, row.marked_by_id, row.entry_id

    def approve_mark(self, alert_id: int, *, by: int, now: datetime) -> None:
        """A second person approved an alert's wrong-match mark: from now on it suppresses the same look."""
        row = self.session.scalar(select(AppearanceRow).where(AppearanceRow.alert_id == alert_id))
        if row is None:
            raise NotFoundError(Phrase("alert {alert} has no wrong-match mark", alert=alert_id))
        row.mark_approved_by_id, row.mark_approved_at = by, now

    def drop_mark(self, alert_id: int) -> None:
        """A rejected mark: the appearance is destroyed, as any decided alert's is."""
        self.session.execute(delete(AppearanceRow).where(AppearanceRow.alert_id == alert_id))

    def marks(self, *, pending_only: bool = True, limit: int = 200) -> builtins.list[WrongMatchMark]:
        """Wrong-match marks, oldest first: those waiting for a second person, or every one in force."""
        users = {uid: name for uid, name in self.session.execute(select(UserRow.id, UserRow.name))}
        query = select(AppearanceRow).where(AppearanceRow.wrong_match.is_(True))
        if pending_only:
            query = query.where(AppearanceRow.mark_approved_by_id.is_(None))
        rows = self.session.scalars(query.order_by(AppearanceRow.marked_at, AppearanceRow.id).limit(limit))
        return [
            WrongMatchMark(
                alert_id=row.alert_id,
                entry_id=row.entry_id,
                marked_by=users.get(row.marked_by_id or 0, "?"),
                marked_at=iso_utc(row.marked_at),
                reason=row.mark_reason,
                approved_by=users.get(row.mark_approved_by_id) if row.mark_approved_by_id else None,
                approved_at=iso_utc(row.mark_approved_at) if row.mark_approved_at else None,
            )
            for row in rows
        ]

    def forget_appearance(self, alert_id: int) -> None:
        """Destroy an alert's appearance unless it was marked a wrong match (a decided or purged alert's)."""
        self.session.execute(
            delete(AppearanceRow).where(AppearanceRow.alert_id == alert_id, AppearanceRow.wrong_match.is_(False))
        )

    def wrong_matches(
        self, entry_id: int, *, model: str, cipher: DataCipher
    ) -> builtins.list[tuple[int, NDArray[np.float32]]]:
        """(alert id, descriptors (S, D)) of every approved wrong-match mark of `entry_id` (pending ones not)."""
        rows = self.session.scalars(
            select(AppearanceRow).where(
                AppearanceRow.entry_id == entry_id,
                AppearanceRow.wrong_match.is_(True),
                AppearanceRow.mark_approved_by_id.is_not(None),
                AppearanceRow.model == model,
            )
        )
        out = []
        for row in rows:
            plain = cipher.decrypt(row.vectors, context=f"appearance:{row.alert_id}")
            out.append((row.alert_id, np.frombuffer(plain, dtype="<f4").reshape(-1, row.dim)))
        return out

    def reencrypt_appearances(self, ring: DataCipher) -> int:
        """Re-encrypt every kept appearance not under the ring's active key; returns how many."""
        n = 0
        for row in self.session.scalars(select(AppearanceRow)):
            if blob_key_id(row.vectors) != ring.active:
                context = f"appearance:{row.alert_id}"
                row.vectors = ring.encrypt(ring.decrypt(row.vectors, context=context), context=context)
                n += 1
        return n

    def appearance_key_ids(self) -> set[str]:
        """Ids of the data keys kept appearances are encrypted with."""
        return {blob_key_id(v) for v in self.session.scalars(select(AppearanceRow.vectors))}

    def list(
        self,
        *,
        status: str | None = PENDING,
        limit: int = 200,
        offset: int = 0,
        decided: bool = False,
        camera: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        categories: Sequence[str] | None = None,
        not_categories: Sequence[str] = (),
    ) -> list[Alert]:
        """Alerts (newest first) with their entry's legal basis and the decisions so far.

        `decided` keeps those no longer pending; `subject` matches the entry's name in part, in any case;
        `categories` keeps entries of those categories, `not_categories` drops those.
        """
        query = (
            select(AlertRow, WatchlistEntryRow)
            .join(WatchlistEntryRow, WatchlistEntryRow.id == AlertRow.entry_id)
            .order_by(AlertRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if status:
            query = query.where(AlertRow.status == status)
        if decided:
            query = query.where(AlertRow.status != PENDING)
        if camera:
            query = query.where(AlertRow.camera == camera)
        if subject:
            query = query.where(func.lower(WatchlistEntryRow.subject_name).contains(subject.lower(), autoescape=True))
        if since is not None:
            query = query.where(AlertRow.created_at >= since)
        if until is not None:
            query = query.where(AlertRow.created_at < until)
        if categories is not None:
            query = query.where(WatchlistEntryRow.category.in_(categories))
        if not_categories:
            query = query.where(WatchlistEntryRow.category.not_in(not_categories))
        names = {uid: uname for uid, uname in self.session.execute(select(UserRow.id, UserRow.name))}
        out = []
        for alert, entry in self.session.execute(query):
            reviews = list(
                self.session.scalars(select(ReviewRow).where(ReviewRow.alert_id == alert.id).order_by(ReviewRow.id))
            )
            out.append(
                Alert(
                    alert_id=alert.id,
                    status=alert.status,
                    camera=alert.camera,
                    source=alert.source,
                    start=alert.start,
                    end=alert.end,
                    score=alert.score,
                    threshold=alert.threshold,
                    snapshots=json.loads(alert.snapshots),
                    entry_id=entry.id,
                    subject_name=entry.subject_name,
                    list_name=entry.list_name,
                    category=entry.category,
                    legal_basis=entry.legal_basis,
                    reference=entry.reference,
                    authority=entry.authority,
                    entry_expires_at=iso_utc(entry.expires_at),
                    enrolled_photo=entry.photo,
                    required_reviews=alert.required_reviews,
                    confirmations=sum(r.decision == "confirm" for r in reviews),
                    decisions=[
                        ReviewDecision(names.get(r.reviewer_id, "?"), r.decision, r.reason, iso_utc(r.created_at))
                        for r in reviews
                    ],
                    created_at=iso_utc(alert.created_at),
                )
            )
        return out

    def decision_facts(self, alert_id: int, reviewer_id: int) -> tuple[str, str | None]:
        """(status, this reviewer's earlier decision or None) of an alert, read inside the deciding transaction."""
        alert = self.session.get(AlertRow, alert_id)
        if alert is None:
            raise NotFoundError(Phrase("alert {alert} does not exist", alert=alert_id), hint="see `kuzet review list`")
        earlier = self.session.scalar(
            select(ReviewRow.decision).where(ReviewRow.alert_id == alert_id, ReviewRow.reviewer_id == reviewer_id)
        )
        return alert.status, earlier

    def add_review(
        self, alert_id: int, *, reviewer_id: int, decision: str, reason: str, now: datetime
    ) -> tuple[str, int, int]:
        """Record a decision the policy allowed; returns (new status, confirmations, required)."""
        alert = self.session.get(AlertRow, alert_id)
        if alert is None:
            raise NotFoundError(Phrase("alert {alert} does not exist", alert=alert_id), hint="see `kuzet review list`")
        self.session.add(
            ReviewRow(
                alert_id=alert_id, reviewer_id=reviewer_id, decision=decision, reason=reason.strip(), created_at=now
            )
        )
        self.session.flush()
        confirmations = int(
            self.session.scalar(
                select(func.count())
                .select_from(ReviewRow)
                .where(ReviewRow.alert_id == alert_id, ReviewRow.decision == "confirm")
            )
            or 0
        )
        status = outcome(decision, confirmations=confirmations, required=alert.required_reviews)
        if status != PENDING:
            alert.status = status
            alert.decided_at = now
        return alert.status, confirmations, alert.required_reviews

    def media_of(self, alert_id: int) -> tuple[builtins.list[str], builtins.list[str]] | None:
        """(redacted snapshots, encrypted originals) of an alert, or None when there is no such alert."""
        row = self.session.get(AlertRow, alert_id)
        return None if row is None else (json.loads(row.snapshots), json.loads(row.originals))

    def count_by_status(self) -> dict[str, int]:
        """Alerts per status."""
        rows = self.session.execute(select(AlertRow.status, func.count()).group_by(AlertRow.status)).all()
        return {str(k): int(v) for k, v in rows}

    def pending_by_camera(self) -> dict[str, int]:
        """Alerts waiting for review, per camera."""
        query = select(AlertRow.camera, func.count()).where(AlertRow.status == "pending").group_by(AlertRow.camera)
        return {str(c): int(n) for c, n in self.session.execute(query).all()}

    def feed(self, after: int, *, limit: int = 100) -> builtins.list[dict[str, object]]:
        """Alerts newer than id `after`, for live updates (no names: the review page shows those)."""
        rows = self.session.scalars(select(AlertRow).where(AlertRow.id > after).order_by(AlertRow.id).limit(limit))
        return [
            {
                "id": a.id,
                "camera": a.camera,
                "status": a.status,
                "score": a.score,
                "created_at": a.created_at.isoformat(),
            }
            for a in rows
        ]

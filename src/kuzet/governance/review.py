"""Candidate alerts from watchlist hits and the people who confirm or reject them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.core.errors import KuzetError, NotFoundError, PolicyRefusal
from kuzet.core.timeutil import iso_utc
from kuzet.store.models import AlertRow, ReviewRow, UserRow, WatchlistEntryRow

PENDING, CONFIRMED, REJECTED = "pending", "confirmed", "rejected"
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


class AlertRepository:
    """Alerts and reviews within one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, alert: NewAlert, *, run_id: int, camera: str, source: str, now: datetime | None = None) -> int:
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
            created_at=now or datetime.now(UTC),
            decided_at=None,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def list(self, *, status: str | None = PENDING, limit: int = 200) -> list[Alert]:
        """Alerts (newest first) with their entry's legal basis and the decisions so far."""
        query = (
            select(AlertRow, WatchlistEntryRow)
            .join(WatchlistEntryRow, WatchlistEntryRow.id == AlertRow.entry_id)
            .order_by(AlertRow.id.desc())
            .limit(limit)
        )
        if status:
            query = query.where(AlertRow.status == status)
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

    def decide(self, alert_id: int, *, reviewer_id: int, decision: str, reason: str) -> tuple[str, int, int]:
        """Record a decision; returns (new status, confirmations, required).

        Raises:
            PolicyRefusal: The reviewer already decided this alert, or it is no longer pending.
        """
        if decision not in DECISIONS:
            raise KuzetError(f"decision must be confirm or reject, not {decision!r}")
        if not reason.strip():
            raise PolicyRefusal(
                "a review needs a reason", hint="say what you compared, e.g. --reason 'same scar, same ears'"
            )
        alert = self.session.get(AlertRow, alert_id)
        if alert is None:
            raise NotFoundError(f"alert {alert_id} does not exist", hint="see `kuzet review list`")
        if alert.status != PENDING:
            raise PolicyRefusal(f"alert {alert_id} is already {alert.status}", hint="only pending alerts are reviewed")
        earlier = self.session.scalar(
            select(ReviewRow).where(ReviewRow.alert_id == alert_id, ReviewRow.reviewer_id == reviewer_id)
        )
        if earlier is not None:
            raise PolicyRefusal(
                f"you already reviewed alert {alert_id} ({earlier.decision})",
                hint="a different reviewer must give the next decision",
            )
        self.session.add(
            ReviewRow(
                alert_id=alert_id,
                reviewer_id=reviewer_id,
                decision=decision,
                reason=reason.strip(),
                created_at=datetime.now(UTC),
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
        if decision == "reject":
            alert.status = REJECTED
            alert.decided_at = datetime.now(UTC)
        elif confirmations >= alert.required_reviews:
            alert.status = CONFIRMED
            alert.decided_at = datetime.now(UTC)
        return alert.status, confirmations, alert.required_reviews

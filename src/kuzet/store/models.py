"""SQLAlchemy 2 table models (the schema is created and changed only by Alembic migrations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of every kuzet table."""


class PersonRow(Base):
    """An enrolment: a consenting person, pending until a second person approves; matched in its scope until expiry."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consent_basis: Mapped[str] = mapped_column(Text, default="consent")
    enrolled_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    scope: Mapped[str] = mapped_column(Text, default='["*"]')
    """JSON list of camera names or camera purposes the person may be recognised on; "*" is every camera."""
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    approver_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    photos: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the enrolment photos' face crops (encrypted media paths), for the approver to look at."""
    templates: Mapped[list[TemplateRow]] = relationship(back_populates="person", cascade="all, delete-orphan")


class TemplateRow(Base):
    """One face descriptor of an enrolled person, from one photo."""

    __tablename__ = "face_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    person: Mapped[PersonRow] = relationship(back_populates="templates")


class AnalysisRunRow(Base):
    """One analysis of one source by one camera; unknown faces are only counted here."""

    __tablename__ = "analysis_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    frames: Mapped[int] = mapped_column(Integer)
    faces: Mapped[int] = mapped_column(Integer)
    tracks: Mapped[int] = mapped_column(Integer)
    matched_tracks: Mapped[int] = mapped_column(Integer)
    unknown_tracks: Mapped[int] = mapped_column(Integer)
    last_commit: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    """The key of the run's last commit: a retry whose first attempt did commit finds it (and stores nothing twice)."""


class EventRow(Base):
    """A face track that matched an enrolled person."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id"), index=True)
    camera: Mapped[str] = mapped_column(String(64), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    identity: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    track_id: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[str] = mapped_column(Text)
    original: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UserRow(Base):
    """A person who signs in to kuzet; roles are a comma-separated list."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SessionRow(Base):
    """A signed-in session; only the SHA-256 of its token is stored."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntryRow(Base):
    """One ledger entry; `entry_hash` chains to `prev_hash` and is the entry's Merkle leaf hash."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object: Mapped[str] = mapped_column(Text)
    justification: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class CheckpointRow(Base):
    """A signed statement of the ledger's size and Merkle root at a moment."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(Integer)
    root_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64), default="")
    """Raw Ed25519 public key (hex) the checkpoint is signed with; empty on checkpoints signed before revision 0005."""


class WatchlistEntryRow(Base):
    """A watchlist entry: a request until a different user approves it; matches only until it expires."""

    __tablename__ = "watchlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_name: Mapped[str] = mapped_column(String(100), index=True)
    subject_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    legal_basis: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(200))
    authority: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text)
    photo: Mapped[str] = mapped_column(Text)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdraw_reason: Mapped[str] = mapped_column(Text, default="", server_default="")


class WatchlistTemplateRow(Base):
    """The face template of a watchlist entry; destroyed when the entry expires or is rejected."""

    __tablename__ = "watchlist_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("watchlist_entries.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class AlertRow(Base):
    """A candidate watchlist hit, waiting for people to confirm or reject it."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("watchlist_entries.id"), index=True)
    camera: Mapped[str] = mapped_column(String(64), index=True)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    track_id: Mapped[int] = mapped_column(Integer)
    snapshots: Mapped[str] = mapped_column(Text)
    originals: Mapped[str] = mapped_column(Text, default="[]")
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    required_reviews: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AppearanceRow(Base):
    """The face descriptors of an alert's track, encrypted.

    Kept while the alert waits for review and, once a reviewer marks the match wrong, until the entry ends, so that
    the same appearance is not alerted again for it.
    """

    __tablename__ = "alert_appearances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(Integer, unique=True)
    """The alert's id (no foreign key: a wrong match's appearance outlives its alert, until the entry ends)."""
    entry_id: Mapped[int] = mapped_column(ForeignKey("watchlist_entries.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    """The track's shot descriptors, float32 rows of `dim`, encrypted with the data key (context `appearance:ID`)."""
    wrong_match: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    marked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    marked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    mark_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    """The marking reviewer's reason (the rejection's)."""
    mark_approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """The second person, an approver, who approved the mark: only then does it suppress hits."""
    mark_approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReviewRow(Base):
    """One reviewer's decision on an alert; a reviewer decides an alert at most once."""

    __tablename__ = "alert_reviews"
    __table_args__ = (UniqueConstraint("alert_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HoldRow(Base):
    """A legal hold: what it names is kept, whatever retention says, until the hold is released."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_ref: Mapped[str] = mapped_column(String(100), index=True)
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AccessGrantRow(Base):
    """Time-limited permission for one user to see unredacted media."""

    __tablename__ = "access_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    justification: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PassageRow(Base):
    """An object crossing a counting line."""

    __tablename__ = "traffic_passages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id"))
    camera: Mapped[str] = mapped_column(String(64), index=True)
    line: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(32))
    track_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    speed_err_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    plate: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ViolationRow(Base):
    """A traffic rule broken, with the path and sha256 of its evidence package (also in the audit ledger)."""

    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id"))
    camera: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    place: Mapped[str] = mapped_column(String(64))
    track_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    plate: Mapped[str | None] = mapped_column(String(16), nullable=True)
    measurements: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThrottleRow(Base):
    """Failed sign-ins counted per key (`user:NAME`, `ip:ADDRESS`), reserved before the password is checked."""

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OutboxRow(Base):
    """A notice for the integrations, written in the transaction that stored what it announces."""

    __tablename__ = "outbox"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused once trimmed: cursors compare them

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    camera: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxCursorRow(Base):
    """How far one destination (`mqtt`, `webhook:HASH`) has received the outbox."""

    __tablename__ = "outbox_cursors"

    destination: Mapped[str] = mapped_column(String(80), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GalleryChangeRow(Base):
    """An enrolment (`person:ID`) or watchlist entry (`watchlist:ID`) whose templates or standing changed."""

    __tablename__ = "gallery_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused: cameras remember the last one they saw

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(40))

"""The one place that wires services together: data directory, config, models, store and pipelines."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from kuzet.audit import merkle
from kuzet.audit.ledger import (
    AuditEntry,
    AuditLedger,
    Checkpoint,
    Details,
    VerifyReport,
    append_checkpoint_log,
    verify_ledger,
)
from kuzet.audit.signing import LedgerSigner
from kuzet.config.models import KuzetConfig
from kuzet.core.errors import (
    AuthError,
    EnrolmentError,
    InputError,
    KuzetError,
    NotFoundError,
    PolicyRefusal,
    StoreError,
)
from kuzet.core.types import Event, Frame, Identity, TrackDecision, User
from kuzet.detect.face import FaceDetector, build_face_detector
from kuzet.governance import review as review_mod
from kuzet.governance import watchlists as wl
from kuzet.governance.policy import CategoryPolicy as CategoryPolicyT
from kuzet.governance.policy import Policy, load_policy
from kuzet.governance.review import Alert, AlertRepository, NewAlert
from kuzet.governance.users import UserRepository, require
from kuzet.ingest.images import load_image
from kuzet.ingest.sources import open_source
from kuzet.recognize import FaceEmbedder, build_face_embedder
from kuzet.recognize.align import align_faces, crop_with_margin
from kuzet.recognize.gallery import NumpyGallery
from kuzet.runtime.faces import FaceAnalyzer, FaceStats
from kuzet.store.db import Database
from kuzet.store.media import MediaStore
from kuzet.store.models import WatchlistEntryRow
from kuzet.store.repositories import (
    EventRepository,
    GalleryRepository,
    NewEvent,
    NewTemplate,
    PersonSummary,
    RunRecord,
)

ENV_HOME = "KUZET_HOME"
SYSTEM = "system"


def resolve_data_dir(explicit: Path | None) -> Path:
    """The data directory: `--data-dir`, else $KUZET_HOME, else the user's data folder."""
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("kuzet", appauthor=False))


@dataclass(frozen=True, slots=True)
class EnrolResult:
    """What `enroll` did."""

    identity: Identity
    added: int
    skipped_duplicates: int


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What `analyze` found and stored."""

    run_id: int
    source: str
    camera: str
    events: list[Event]
    alert_ids: list[int]
    stats: FaceStats
    seconds: float


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that one ledger entry is in the tree a signed checkpoint commits to."""

    entry: AuditEntry
    checkpoint: Checkpoint
    path: list[str]
    valid: bool


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that a later checkpoint's tree extends an earlier one's."""

    old: Checkpoint
    new: Checkpoint
    path: list[str]
    valid: bool


class Kuzet:
    """kuzet's services over one data directory; every CLI command and API route goes through here.

    All state lives under `data_dir`: `kuzet.db` (SQLite), `media/`, `keys/` (the ledger signing key),
    `audit/checkpoints.jsonl` (a copy of every signed checkpoint) and optional `config.yaml` and `policy.yaml`.
    Two instances with different data directories share nothing.

    Every action that touches people's data takes the acting `User` and writes its audit entry in the same
    database transaction as the action itself; a signed checkpoint closes each transaction that added entries.
    """

    def __init__(
        self,
        data_dir: Path,
        config: KuzetConfig | None = None,
        *,
        policy: Policy | None = None,
        origin: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config = config or KuzetConfig()
        self.origin = origin or f"cli@{socket.gethostname()}"
        self.now = clock or (lambda: datetime.now(UTC))
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "media").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {data_dir}: {exc.strerror}",
                hint="choose a writable folder with --data-dir or KUZET_HOME",
            ) from None
        self.db = Database(f"sqlite:///{data_dir / 'kuzet.db'}")
        self.db.migrate()
        self.media = MediaStore(data_dir / "media")
        policy_file = data_dir / "policy.yaml"
        self.policy = policy or load_policy(policy_file if policy_file.is_file() else None)
        self.checkpoint_log = data_dir / "audit" / "checkpoints.jsonl"
        self._record_policy()

    def close(self) -> None:
        """Release the database."""
        self.db.dispose()

    @cached_property
    def face_detector(self) -> FaceDetector:
        """The configured face detector (loaded on first use)."""
        return build_face_detector(self.config.face_detector)

    @cached_property
    def face_embedder(self) -> FaceEmbedder:
        """The configured face embedder (loaded on first use)."""
        return build_face_embedder(self.config.face_embedder)

    @cached_property
    def signer(self) -> LedgerSigner:
        """The ledger's checkpoint signing key (created on first use)."""
        return LedgerSigner.load_or_create(self.data_dir / "keys")

    # -- audited transactions ----------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[tuple[Session, AuditLedger]]:
        """One transaction for an action and its audit entries, closed by a signed checkpoint."""
        with self.db.session() as session:
            ledger = AuditLedger(session)
            yield session, ledger
            cp = ledger.checkpoint(self.signer)
        if cp is not None:
            append_checkpoint_log(self.checkpoint_log, cp)

    def _audit(
        self,
        ledger: AuditLedger,
        actor: User | None,
        action: str,
        *,
        object: str = "",
        justification: str = "",
        details: Details | None = None,
    ) -> None:
        ledger.append(
            actor=actor.name if actor else SYSTEM,
            action=action,
            object=object,
            justification=justification,
            details=details,
            source=self.origin,
        )

    def _refuse(self, actor: User | None, action: str, *, object: str, reason: str, hint: str = "") -> PolicyRefusal:
        """Record a refusal in its own transaction (it must survive the failed action) and build the error."""
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, action, object=object, justification=reason)
        return PolicyRefusal(reason, hint=hint or "see docs/governance.md")

    def _record_policy(self) -> None:
        """Ledger the policy in force whenever it differs from the last one recorded."""
        with self.db.session() as session:
            last = AuditLedger(session).entries(action="policy.loaded", limit=10**9)
        if last and last[-1].details.get("digest") == self.policy.digest:
            return
        with self._tx() as (_, ledger):
            self._audit(ledger, None, "policy.loaded", object=self.policy.source, details=self.policy.summary())

    # -- users and sign-in ------------------------------------------------------------------------------

    def init_admin(self, name: str, password: str) -> User:
        """Create the first administrator; refused once any user exists."""
        with self._tx() as (session, ledger):
            users = UserRepository(session)
            if users.count():
                raise AuthError(
                    f"{self.data_dir} is already initialised", hint="sign in with `kuzet login NAME --password-stdin`"
                )
            admin = users.create(name, password, ["admin"], created_by=None)
            self._audit(ledger, admin, "user.init", object=f"user:{admin.name}", details={"roles": "admin"})
        return admin

    def add_user(self, actor: User, name: str, password: str, roles: list[str]) -> User:
        """Create a user (admins only)."""
        require(actor, "admin", action="add users")
        with self._tx() as (session, ledger):
            user = UserRepository(session).create(name, password, roles, created_by=actor.user_id)
            self._audit(
                ledger, actor, "user.add", object=f"user:{user.name}", details={"roles": ",".join(sorted(user.roles))}
            )
        return user

    def users(self, actor: User) -> list[User]:
        """Every user (admins and auditors)."""
        require(actor, "admin", "auditor", action="list users")
        with self.db.session() as session:
            return UserRepository(session).list()

    def login(self, name: str, password: str) -> tuple[User, str]:
        """Check a password and open a session; failures are audited and give no hint which part was wrong."""
        with self.db.session() as session:
            user = UserRepository(session).verify_password(name, password)
        if user is None:
            with self._tx() as (_, ledger):
                ledger.append(
                    actor="anonymous", action="auth.login_failed", object=f"user:{name[:64]}", source=self.origin
                )
            raise AuthError("wrong user name or password", hint="check both and try again")
        with self._tx() as (session, ledger):
            token = UserRepository(session).open_session(user)
            self._audit(ledger, user, "auth.login", object=f"user:{user.name}")
        return user, token

    def authenticate(self, token: str) -> User:
        """The user a session token belongs to."""
        with self.db.session() as session:
            return UserRepository(session).user_for_token(token)

    def logout(self, token: str) -> None:
        """End a session."""
        user = self.authenticate(token)
        with self._tx() as (session, ledger):
            UserRepository(session).revoke(token)
            self._audit(ledger, user, "auth.logout", object=f"user:{user.name}")

    # -- consented gallery ------------------------------------------------------------------------------

    def _face_template(self, photo: Path) -> tuple[NDArray[np.float32], NDArray[np.uint8], str]:
        """(descriptor, face crop, photo sha256) from a photo that must show exactly one face."""
        try:
            image = load_image(photo, max_pixels=self.config.ingest.max_pixels)
        except InputError as exc:
            raise EnrolmentError(f"cannot enrol from {photo}: {exc.message}", hint=exc.hint) from None
        dets = self.face_detector.detect(image)
        if len(dets) == 0:
            raise EnrolmentError(
                f"no face found in {photo}", hint="use a clear, frontal photo where the face is at least 40 px"
            )
        if len(dets) > 1:
            raise EnrolmentError(
                f"{len(dets)} faces found in {photo}; an enrolment photo must show one person only",
                hint="crop the photo to the person being enrolled",
            )
        assert dets.landmarks is not None
        chip = align_faces(image, dets.landmarks)
        vector = self.face_embedder.embed(chip)[0]
        return vector, crop_with_margin(image, dets.boxes[0]), hashlib.sha256(photo.read_bytes()).hexdigest()

    def enroll(self, actor: User, name: str, photos: list[Path], *, consent: str = "consent") -> EnrolResult:
        """Enrol a person who consented (e.g. staff at an access point) from photos showing one face each.

        Every photo is checked before anything is stored: one bad photo refuses the whole enrolment. The
        enrolment and its basis are audited. Captured faces are never enrolled automatically: this is the only way
        into the gallery, and it needs a signed-in operator or admin.

        Raises:
            EnrolmentError: A photo is unreadable, shows no face or more than one face, or the name is invalid.
        """
        require(actor, "admin", "operator", action="enrol people")
        name = name.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise EnrolmentError(f"invalid name {name!r}", hint="give 1-200 printable characters")
        if not photos:
            raise EnrolmentError("no photos given", hint="give one or more photos of the person")
        refusal = self.policy.screener.screen("name", name)
        if refusal is not None:
            raise self._refuse(actor, "enrol.refused", object=f"person:{name}", reason=refusal.reason)
        templates = []
        for photo in photos:
            vector, _, sha = self._face_template(photo)
            templates.append(NewTemplate(vector=vector, photo_sha256=sha))
        with self._tx() as (s, ledger):
            identity, added = GalleryRepository(s).add_templates(
                name, templates, model=self.face_embedder.name, consent=consent, enrolled_by=actor.user_id
            )
            self._audit(
                ledger,
                actor,
                "enrol",
                object=f"person:{identity.person_id}",
                justification=consent,
                details={"name": name, "templates_added": added, "basis": "consent"},
            )
        return EnrolResult(identity=identity, added=added, skipped_duplicates=len(templates) - added)

    def people(self, actor: User) -> list[PersonSummary]:
        """Everyone in the consented gallery."""
        require(actor, "admin", "operator", "auditor", action="list enrolled people")
        with self._tx() as (s, ledger):
            rows = GalleryRepository(s).people()
            self._audit(ledger, actor, "people.view", details={"count": len(rows)})
        return rows

    # -- watchlists -------------------------------------------------------------------------------------

    def expire_watchlists(self) -> list[int]:
        """Expire every entry past its expiry: it stops matching and its template and photo are destroyed."""
        now = self.now()
        with self._tx() as (s, ledger):
            repo = wl.WatchlistRepository(s)
            expired = []
            for row in repo.due_for_expiry(now):
                destroyed = repo.destroy_templates(row.id)
                if row.photo:
                    self.media.delete(row.photo)
                row.photo = ""
                row.status = wl.EXPIRED
                row.decided_at = now
                expired.append(row.id)
                self._audit(
                    ledger,
                    None,
                    "watchlist.expired",
                    object=f"watchlist:{row.id}",
                    details={"templates_destroyed": destroyed, "expired_at": row.expires_at.isoformat()},
                )
        return expired

    def watchlist_request(self, actor: User, req: wl.WatchlistRequest, photo: Path) -> int:
        """File a watchlist request; it matches nothing until a different user approves it.

        Raises:
            PolicyRefusal: A prohibited category or label, a missing legal basis, or an expiry beyond the maximum;
                the refusal is audited.
        """
        require(actor, "requester", action="request watchlist entries")
        refusal = wl.check_request(req, self.policy, today=self.now().date())
        if refusal is not None:
            raise self._refuse(
                actor,
                "watchlist.refused",
                object=f"watchlist-request:{req.list_name}",
                reason=refusal.reason,
                hint="watchlists may only hold lawful, allowed categories; see docs/governance.md",
            )
        vector, crop, sha = self._face_template(photo)
        rel = self.media.save_jpeg(crop, kind="watchlist")
        try:
            with self._tx() as (s, ledger):
                entry_id = wl.WatchlistRepository(s).add(
                    req, requester_id=actor.user_id, vector=vector, model=self.face_embedder.name, photo=rel, sha=sha
                )
                self._audit(
                    ledger,
                    actor,
                    "watchlist.request",
                    object=f"watchlist:{entry_id}",
                    justification=f"{req.legal_basis} {req.reference} ({req.authority})",
                    details={
                        "list": req.list_name,
                        "category": req.category,
                        "legal_basis": req.legal_basis,
                        "reference": req.reference,
                        "authority": req.authority,
                        "expires": req.expires.isoformat(),
                    },
                )
        except BaseException:
            self.media.delete(rel)
            raise
        return entry_id

    def watchlist_approve(self, actor: User, entry_id: int, *, reason: str = "") -> None:
        """Approve a pending entry; the approver must not be its requester."""
        require(actor, "approver", action="approve watchlist entries")
        self.expire_watchlists()
        with self.db.session() as s:
            row = wl.WatchlistRepository(s).get_row(entry_id)
            status, requester, category = row.status, row.requester_id, row.category
        if status != wl.PENDING:
            raise self._refuse(
                actor,
                "watchlist.approve_refused",
                object=f"watchlist:{entry_id}",
                reason=f"entry {entry_id} is {status}, not pending",
            )
        if requester == actor.user_id:
            raise self._refuse(
                actor,
                "watchlist.approve_refused",
                object=f"watchlist:{entry_id}",
                reason=f"{actor.name} requested entry {entry_id} and cannot also approve it",
                hint="a different user with the approver role must approve",
            )
        if self.policy.category(category) is None:
            raise self._refuse(
                actor,
                "watchlist.approve_refused",
                object=f"watchlist:{entry_id}",
                reason=f"category {category!r} is no longer allowed",
            )
        with self._tx() as (s, ledger):
            row = wl.WatchlistRepository(s).get_row(entry_id)
            row.status = wl.APPROVED
            row.approver_id = actor.user_id
            row.decision_reason = reason
            row.decided_at = self.now()
            self._audit(ledger, actor, "watchlist.approve", object=f"watchlist:{entry_id}", justification=reason)

    def watchlist_reject(self, actor: User, entry_id: int, *, reason: str) -> None:
        """Reject a pending entry; its template and photo are destroyed."""
        require(actor, "approver", action="reject watchlist entries")
        if not reason.strip():
            raise PolicyRefusal("a rejection needs a reason", hint="add --reason TEXT")
        with self._tx() as (s, ledger):
            repo = wl.WatchlistRepository(s)
            row = repo.get_row(entry_id)
            if row.status != wl.PENDING:
                raise PolicyRefusal(
                    f"entry {entry_id} is {row.status}, not pending", hint="only requests can be rejected"
                )
            destroyed = repo.destroy_templates(entry_id)
            if row.photo:
                self.media.delete(row.photo)
            row.photo = ""
            row.status = wl.REJECTED
            row.approver_id = actor.user_id
            row.decision_reason = reason.strip()
            row.decided_at = self.now()
            self._audit(
                ledger,
                actor,
                "watchlist.reject",
                object=f"watchlist:{entry_id}",
                justification=reason.strip(),
                details={"templates_destroyed": destroyed},
            )

    def watchlist_show(self, actor: User, *, status: str | None = None) -> list[wl.WatchlistEntry]:
        """Watchlist entries (never their templates)."""
        require(actor, "requester", "approver", "reviewer", "auditor", "admin", action="view watchlists")
        self.expire_watchlists()
        with self._tx() as (s, ledger):
            rows = wl.WatchlistRepository(s).list(status=status)
            self._audit(ledger, actor, "watchlist.view", details={"count": len(rows), "status": status or "all"})
        return rows

    # -- analysis -----------------------------------------------------------------------------------------

    def _load_gallery(self) -> NumpyGallery:
        """Consented people plus approved, unexpired watchlist entries, in one index."""
        model = self.face_embedder.name
        with self.db.session() as s:
            people_gallery = GalleryRepository(s).load(model=model)
            wl_people, blobs, owners = wl.WatchlistRepository(s).active_identities(
                model=model, now=self.now(), policy=self.policy
            )
        people = list(people_gallery.people) + wl_people
        offset = len(people_gallery.people)
        vectors = [people_gallery.templates] + [np.frombuffer(b, dtype="<f4")[None, :] for b in blobs]
        templates = np.concatenate(vectors).astype(np.float32) if blobs else people_gallery.templates
        all_owners = np.concatenate([people_gallery.owners, np.asarray(owners, np.intp) + offset]).astype(np.intp)
        return NumpyGallery(templates, all_owners, people)

    def analyze(
        self,
        actor: User,
        source: str,
        *,
        camera: str = "default",
        fps: float | None = None,
        on_start: Callable[[int | None], None] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> AnalysisResult:
        """Run the face pipeline over a source: consented-gallery matches become events, watchlist hits alerts.

        A watchlist hit is a candidate alert waiting for reviewers, never a fact. Everything from the run is
        committed together at the end with its audit entries; if decoding fails part-way, nothing is stored and
        any snapshots written are removed.

        Args:
            actor: The signed-in operator.
            source: File, folder or URL.
            camera: Camera name recorded on the events.
            fps: Frames analysed per second (video); None analyses every frame.
            on_start: Called once with the expected number of frames (None when unknown).
            on_frame: Called after each analysed frame (for progress bars).
        """
        require(actor, "admin", "operator", action="run analyses")
        self.expire_watchlists()
        started = self.now()
        gallery = self._load_gallery()
        analyzer = FaceAnalyzer(
            detector=self.face_detector,
            embedder=self.face_embedder,
            gallery=gallery,
            people=gallery.people,
            config=self.config,
        )
        written: list[str] = []
        new_events: list[NewEvent] = []
        new_alerts: list[NewAlert] = []

        def keep(decisions: list[TrackDecision]) -> None:
            for d in decisions:
                if d.identity is None:
                    continue  # unknown faces are counted by the analyzer, never stored
                if d.identity.kind == "watchlist":
                    paths = [self.media.save_jpeg(shot.crop, kind="alerts") for shot in d.track.shots]
                    written.extend(paths)
                    category = self._entry_category(d.identity.person_id)
                    new_alerts.append(
                        NewAlert(
                            entry_id=d.identity.person_id,
                            score=round(d.score, 4),
                            threshold=float(
                                d.identity.threshold
                                if d.identity.threshold is not None
                                else self.config.recognition.threshold
                            ),
                            start=round(d.track.start, 3),
                            end=round(d.track.end, 3),
                            track_id=d.track.track_id,
                            snapshots=paths,
                            required_reviews=category.required_reviews if category else 2,
                        )
                    )
                    continue
                rel = self.media.save_jpeg(d.track.shots[0].crop)
                written.append(rel)
                new_events.append(
                    NewEvent(
                        person_id=d.identity.person_id,
                        identity=d.identity.name,
                        score=round(d.score, 4),
                        start=round(d.track.start, 3),
                        end=round(d.track.end, 3),
                        track_id=d.track.track_id,
                        snapshot=rel,
                    )
                )

        try:
            with open_source(source, fps=fps, config=self.config.ingest) as frames:
                if on_start is not None:
                    on_start(frames.expected_frames)
                name = frames.name
                for frame in frames:
                    keep(analyzer.process(frame))
                    if on_frame is not None:
                        on_frame(frame)
                keep(analyzer.finish())
            stats = analyzer.stats
            run = RunRecord(
                camera=camera,
                source=name,
                started_at=started,
                frames=stats.frames,
                faces=stats.faces,
                tracks=stats.tracks,
                matched_tracks=stats.matched_tracks,
                unknown_tracks=stats.unknown_tracks,
            )
            with self._tx() as (s, ledger):
                run_id, events = EventRepository(s).save_run(run, new_events)
                alerts = AlertRepository(s)
                alert_ids = [alerts.add(a, run_id=run_id, camera=camera, source=name) for a in new_alerts]
                self._audit(
                    ledger,
                    actor,
                    "analysis.run",
                    object=f"run:{run_id}",
                    details={
                        "camera": camera,
                        "source": name,
                        "frames": stats.frames,
                        "tracks": stats.tracks,
                        "events": len(events),
                        "alerts": len(alert_ids),
                        "unknown_tracks": stats.unknown_tracks,
                        "gallery_people": len(gallery.people),
                    },
                )
                for alert_id, a in zip(alert_ids, new_alerts, strict=True):
                    self._audit(
                        ledger,
                        actor,
                        "alert.created",
                        object=f"alert:{alert_id}",
                        details={"entry": a.entry_id, "score": a.score, "threshold": a.threshold, "camera": camera},
                    )
        except (KuzetError, KeyboardInterrupt, OSError):
            for rel in written:
                self.media.delete(rel)
            raise
        seconds = (self.now() - started).total_seconds()
        return AnalysisResult(
            run_id=run_id, source=name, camera=camera, events=events, alert_ids=alert_ids, stats=stats, seconds=seconds
        )

    def _entry_category(self, entry_id: int) -> CategoryPolicyT | None:
        with self.db.session() as s:
            row = s.get(WatchlistEntryRow, entry_id)
            return None if row is None else self.policy.category(row.category)

    def events(
        self,
        actor: User,
        *,
        camera: str | None = None,
        identity: str | None = None,
        limit: int = 1000,
        justification: str = "",
    ) -> list[Event]:
        """Stored events, newest first; viewing them is audited."""
        require(actor, "admin", "operator", "reviewer", "auditor", action="view events")
        with self._tx() as (s, ledger):
            rows = EventRepository(s).list(camera=camera, identity=identity, limit=limit)
            self._audit(
                ledger,
                actor,
                "events.view",
                justification=justification,
                details={"camera": camera, "identity": identity, "count": len(rows)},
            )
        return rows

    def event_dict(self, event: Event) -> dict[str, object]:
        """An event as the JSON object the CLI and API return."""
        return {
            "id": event.event_id,
            "camera": event.camera,
            "identity": event.identity,
            "score": event.score,
            "start": event.start,
            "end": event.end,
            "track_id": event.track_id,
            "snapshot": str(self.media.path(event.snapshot)) if event.snapshot else "",
            "run_id": event.run_id,
            "source": event.source,
            "created_at": event.created_at,
        }

    # -- review ---------------------------------------------------------------------------------------------

    def review_list(self, actor: User, *, status: str | None = review_mod.PENDING) -> list[Alert]:
        """Alerts waiting for review (or with another status), with everything a reviewer needs."""
        require(actor, "reviewer", "auditor", action="view alerts")
        with self._tx() as (s, ledger):
            alerts = AlertRepository(s).list(status=status)
            self._audit(ledger, actor, "review.view", details={"count": len(alerts), "status": status or "all"})
        return alerts

    def review(self, actor: User, alert_id: int, decision: str, *, reason: str) -> str:
        """Confirm or reject an alert; it is confirmed once enough different reviewers confirm it.

        Returns:
            The alert's status after the decision.
        """
        require(actor, "reviewer", action="review alerts")
        try:
            with self._tx() as (s, ledger):
                status, confirmations, required = AlertRepository(s).decide(
                    alert_id, reviewer_id=actor.user_id, decision=decision, reason=reason
                )
                self._audit(
                    ledger,
                    actor,
                    f"review.{decision}",
                    object=f"alert:{alert_id}",
                    justification=reason.strip(),
                    details={"confirmations": confirmations, "required": required},
                )
                if status != review_mod.PENDING:
                    self._audit(
                        ledger,
                        actor,
                        f"alert.{status}",
                        object=f"alert:{alert_id}",
                        details={"confirmations": confirmations},
                    )
        except PolicyRefusal as exc:
            raise self._refuse(
                actor, "review.refused", object=f"alert:{alert_id}", reason=exc.message, hint=exc.hint
            ) from None
        return status

    # -- audit ----------------------------------------------------------------------------------------------

    def audit_verify(self, actor: User | None) -> VerifyReport:
        """Verify the whole ledger; the check is recorded only when it passes (a broken ledger is left as found)."""
        if actor is not None:
            require(actor, "auditor", "admin", action="verify the audit ledger")
        with self.db.session() as s:
            report = verify_ledger(s, self.signer, log_file=self.checkpoint_log)
        if report.ok and actor is not None:
            with self._tx() as (_, ledger):
                self._audit(ledger, actor, "audit.verify", details={"entries": report.entries, "ok": True})
        return report

    def audit_log(
        self, actor: User, *, start: int = 1, limit: int = 1000, action: str | None = None
    ) -> list[AuditEntry]:
        """Ledger entries, oldest first."""
        require(actor, "auditor", "admin", action="read the audit ledger")
        with self._tx() as (_, ledger):
            rows = ledger.entries(start=start, limit=limit, action=action)
            self._audit(ledger, actor, "audit.view", details={"start": start, "count": len(rows)})
        return rows

    def audit_checkpoint(self, actor: User) -> Checkpoint:
        """Sign a checkpoint of the ledger as it is now."""
        require(actor, "auditor", "admin", action="sign ledger checkpoints")
        with self.db.session() as session:
            ledger = AuditLedger(session)
            self._audit(ledger, actor, "audit.checkpoint")
            cp = ledger.checkpoint(self.signer, force=True)
        assert cp is not None
        append_checkpoint_log(self.checkpoint_log, cp)
        return cp

    def audit_prove(self, actor: User, seq: int) -> InclusionProof:
        """Inclusion proof of entry `seq` in the newest checkpoint."""
        require(actor, "auditor", "admin", action="prove ledger entries")
        with self.db.session() as s:
            ledger = AuditLedger(s)
            cp = ledger.latest_checkpoint()
            if cp is None or seq > cp.tree_size:
                raise NotFoundError(
                    f"entry {seq} is not covered by a checkpoint yet", hint="run `kuzet audit checkpoint` first"
                )
            entries = ledger.entries(start=seq, limit=1)
            if seq < 1 or not entries:
                raise NotFoundError(f"ledger entry {seq} does not exist", hint="see `kuzet audit log`")
            leaves = ledger.leaves(cp.tree_size)
        path = merkle.inclusion_proof(seq - 1, leaves)
        valid = merkle.verify_inclusion(seq - 1, cp.tree_size, leaves[seq - 1], path, bytes.fromhex(cp.root_hash))
        return InclusionProof(entry=entries[0], checkpoint=cp, path=[p.hex() for p in path], valid=valid)

    def audit_consistency(self, actor: User, old_id: int, new_id: int) -> ConsistencyProof:
        """Consistency proof between two checkpoints: the newer tree extends the older one."""
        require(actor, "auditor", "admin", action="prove ledger consistency")
        with self.db.session() as s:
            ledger = AuditLedger(s)
            by_id = {c.checkpoint_id: c for c in ledger.checkpoints()}
            if old_id not in by_id or new_id not in by_id:
                raise NotFoundError("no such checkpoint", hint="see `kuzet audit checkpoints`")
            old, new = by_id[old_id], by_id[new_id]
            if old.tree_size > new.tree_size:
                old, new = new, old
            leaves = ledger.leaves(new.tree_size)
        path = merkle.consistency_proof(old.tree_size, leaves)
        valid = merkle.verify_consistency(
            old.tree_size, new.tree_size, bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash), path
        )
        return ConsistencyProof(old=old, new=new, path=[p.hex() for p in path], valid=valid)

    def checkpoints(self, actor: User) -> list[Checkpoint]:
        """Every signed checkpoint."""
        require(actor, "auditor", "admin", action="list ledger checkpoints")
        with self.db.session() as s:
            return AuditLedger(s).checkpoints()

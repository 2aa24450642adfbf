"""The one place that wires services together: data directory, config, models, store and pipelines."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.analytics.plates import PlateFormat, PlateText, plate_formats
from kuzet.analytics.plates import clean as clean_plate
from kuzet.analytics.traffic import (
    Passage,
    PlateTrack,
    TrafficAnalyzer,
    TrafficStats,
    Violation,
    counting_lines_summary,
)
from kuzet.audit import merkle
from kuzet.audit.checkpoint_log import CheckpointLog
from kuzet.audit.ledger import AuditEntry, AuditLedger, Checkpoint, Details, KeyRotation
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.verify import TrustedCheckpoint, VerifyReport, verify_ledger
from kuzet.audit.witness import WitnessPublisher, build_witness, check_outside
from kuzet.config.models import CameraConfig, KuzetConfig
from kuzet.config.secrets import Secrets
from kuzet.core.errors import (
    AuthError,
    ConfigError,
    EnrolmentError,
    InputError,
    KuzetError,
    NotFoundError,
    PermissionDenied,
    PolicyRefusal,
    StoreError,
    TooManyAttempts,
)
from kuzet.core.timeutil import aware, iso_utc
from kuzet.core.types import ROLES, Event, FaceSample, Frame, Identity, Image, TrackDecision, User
from kuzet.detect.face import FaceDetector, build_face_detector
from kuzet.detect.objects import build_object_detector
from kuzet.detect.plate.ppocr import PpOcrPlateDetector
from kuzet.detect.plate.reader import PlateReader
from kuzet.governance import review as review_mod
from kuzet.governance import watchlists as wl
from kuzet.governance.approval import decision_refusal
from kuzet.governance.enrolment import ALL_CAMERAS, EnrolmentRequest, check_enrolment, in_scope, resolved_expiry
from kuzet.governance.evidence import write_evidence
from kuzet.governance.policy import CategoryPolicy as CategoryPolicyT
from kuzet.governance.policy import Policy, load_policy
from kuzet.governance.redaction import Redactor, expand, obscure, production_redactor
from kuzet.governance.report import TransparencyReport, build_report
from kuzet.governance.retention import HOLD_TYPES, HeldSet, PurgeReport, delete_event, purge
from kuzet.governance.review import Alert, AlertRepository, NewAlert
from kuzet.governance.users import ThrottleRepository, UserRepository, require
from kuzet.ingest.images import load_image
from kuzet.ingest.sources import FrameSource, open_source
from kuzet.recognize import FaceEmbedder, build_face_embedder
from kuzet.recognize.align import align_faces, crop_with_margin
from kuzet.recognize.gallery import NumpyGallery, build_gallery
from kuzet.runtime.faces import FaceAnalyzer, FaceStats
from kuzet.runtime.status import ServiceStatus, read_status
from kuzet.store.crypto import ENV_KEY, DataCipher, blob_key_id
from kuzet.store.db import Database
from kuzet.store.files import private_dir, tighten
from kuzet.store.media import MediaStore, encode_jpeg
from kuzet.store.models import (
    AccessGrantRow,
    AlertRow,
    AuditEntryRow,
    EventRow,
    HoldRow,
    PassageRow,
    PersonRow,
    TemplateRow,
    ViolationRow,
    WatchlistEntryRow,
    WatchlistTemplateRow,
)
from kuzet.store.repositories import (
    Enrolment,
    EventRepository,
    GalleryRepository,
    NewEvent,
    NewTemplate,
    PersonSummary,
    RunRecord,
)

log = logging.getLogger("kuzet")
ENV_HOME = "KUZET_HOME"
SYSTEM = "system"


class _Refused(Exception):
    """A policy refusal found inside a transaction: the transaction rolls back, then the refusal is ledgered."""

    def __init__(self, reason: str, hint: str = "see docs/governance.md") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


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
    traffic: TrafficResult | None = None


@dataclass(frozen=True, slots=True)
class StoredViolation:
    """A violation as stored: its row id and evidence package."""

    id: int
    kind: str
    place: str
    at: float
    plate: str | None
    measurements: dict[str, object]
    evidence: str
    evidence_sha256: str


@dataclass(frozen=True, slots=True)
class TrafficResult:
    """What a traffic camera's analysis counted and found."""

    stats: TrafficStats
    passages: list[Passage]
    violations: list[StoredViolation]
    per_line: dict[str, dict[str, int]]
    calibration_note: str | None


@dataclass(frozen=True, slots=True)
class Recording:
    """A kept recording segment (encrypted under the media folder)."""

    path: str
    camera: str
    written_at: datetime
    bytes: int


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
        check_outside(self.config.audit.witnesses, data_dir)
        try:
            # Owner-only whatever the umask, and tightened if an older kuzet left it readable by others.
            for folder in (data_dir, data_dir / "media", data_dir / "audit"):
                private_dir(folder)
            for name in ("session.token", "secrets.yaml", "config.yaml", "policy.yaml"):
                tighten(data_dir / name)
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
        self.checkpoint_log = CheckpointLog(data_dir / "audit" / "checkpoints.jsonl")
        self._finish_key_rotation()
        self._record_policy()
        self._encrypt_plain_watchlist_photos()

    def close(self) -> None:
        """Deliver queued checkpoints to the witnesses and release the database."""
        if "witnesses" in self.__dict__:
            self.witnesses.close()
        self.db.dispose()

    @cached_property
    def witnesses(self) -> WitnessPublisher:
        """Where every committed checkpoint is sent (`audit.witnesses` in the config)."""
        secrets = self.secrets()
        return WitnessPublisher([build_witness(w, secrets) for w in self.config.audit.witnesses])

    @cached_property
    def face_detector(self) -> FaceDetector:
        """The configured face detector (loaded on first use)."""
        return build_face_detector(self.config.face_detector)

    @cached_property
    def face_embedder(self) -> FaceEmbedder:
        """The configured face embedder (loaded on first use)."""
        return build_face_embedder(self.config.face_embedder)

    @cached_property
    def cipher(self) -> DataCipher:
        """The data key ring (templates and unredacted media); created on first use of an empty database only."""
        with self.db.read() as s:
            has_data = bool(s.scalar(select(func.count()).select_from(TemplateRow))) or bool(
                s.scalar(select(func.count()).select_from(WatchlistTemplateRow))
            )
        return DataCipher.load(self.data_dir / "keys", create=not has_data)

    @cached_property
    def plate_detector(self) -> PpOcrPlateDetector:
        """Plate-shaped text detector used for redaction (loaded on first use)."""
        return PpOcrPlateDetector(max_side=960)

    @cached_property
    def plate_reader(self) -> PlateReader:
        """Plate candidates and their text (PP-OCR detection and recognition), loaded on first use."""
        return PlateReader(max_side=640)

    def _read_vehicle_plate(
        self, formats: list[PlateFormat]
    ) -> Callable[[Image, NDArray[np.float32]], tuple[PlateText, NDArray[np.float32], Image] | None]:
        def read(image: Image, box: NDArray[np.float32]) -> tuple[PlateText, NDArray[np.float32], Image] | None:
            h, w = image.shape[:2]
            x1, y1, x2, y2 = expand(box[None, :], 0.1, w, h)[0].tolist()
            crop = np.ascontiguousarray(image[y1:y2, x1:x2])
            if crop.shape[0] < 16 or crop.shape[1] < 16:
                return None
            found = self.plate_reader.read(crop, formats)
            if found is None:
                return None
            pb = found.box + np.array([x1, y1, x1, y1], np.float32)
            bx1, by1, bx2, by2 = (int(v) for v in pb.tolist())
            return found.plate, pb, np.ascontiguousarray(image[by1 : max(by2, by1 + 1), bx1 : max(bx2, bx1 + 1)])

        return read

    def camera_config(self, camera: str) -> CameraConfig:
        """The named camera's settings (a camera not in the config runs face analytics with the defaults)."""
        for cam in self.config.cameras:
            if cam.name == camera:
                return cam
        return CameraConfig.model_construct(name=camera)

    @cached_property
    def redactor(self) -> Redactor:
        """Face and plate redaction for stored media: recall-first face finding (`redaction` in the config)."""
        return production_redactor(self.config.redaction, plates=self.plate_detector)

    @cached_property
    def video_redactor(self) -> Redactor:
        """The same redaction, tuned to keep pace with video (camera replays, recording exports)."""
        return production_redactor(self.config.redaction, video=True, plates=self.plate_detector)

    def _redacted_snapshot(self, shot: FaceSample) -> tuple[str, str]:
        """Store a best shot twice: redacted in the clear, the original encrypted.

        Every other face and every plate is hidden: the redaction runs its own recall-first search on the crop,
        besides hiding the faces the analysis saw.
        """
        keep = shot.crop_box if shot.crop_box.size == 4 else None
        crop = self.redactor.redact_image(shot.crop, keep=keep).image
        h, w = crop.shape[:2]
        obscure(crop, expand(shot.others, self.config.redaction.expand, w, h))
        redacted = self.media.save_jpeg(crop)
        original = self.media.save_encrypted(encode_jpeg(shot.crop), cipher=self.cipher)
        return redacted, original

    @cached_property
    def signer(self) -> LedgerSigner:
        """The ledger's checkpoint signing key (created on first use)."""
        return LedgerSigner.load_or_create(self.data_dir / "keys")

    def _finish_key_rotation(self) -> None:
        """Complete a signing-key rotation interrupted by a crash: promote the new key if its hand-over committed."""
        keys = self.data_dir / "keys"
        staged = LedgerSigner.staged(keys)
        if staged is None:
            return
        with self.db.read() as s:
            latest = AuditLedger(s).latest_checkpoint()
        if latest is not None and latest.public_key == staged.public_hex:
            LedgerSigner.promote_staged(keys)
        else:
            LedgerSigner.discard_staged(keys)

    # -- audited transactions ----------------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, signer: LedgerSigner | None = None) -> Iterator[tuple[Session, AuditLedger]]:
        """One transaction for an action and its audit entries, closed by a signed checkpoint.

        The checkpoint is written to the outside copy before the commit and marked committed after it (see
        `audit.checkpoint_log`), then handed to the witnesses: nothing is committed that the copy lacks.
        """
        cp: Checkpoint | None = None
        try:
            with self.db.session() as session:
                ledger = AuditLedger(session, clock=self.now)
                yield session, ledger
                cp = ledger.checkpoint(signer or self.signer)
                if cp is not None:
                    self.checkpoint_log.prepare(cp)
        except BaseException:
            if cp is not None:
                try:
                    self.checkpoint_log.rolled_back(cp)
                except OSError as exc:
                    log.error("could not mark checkpoint %s as rolled back: %s", cp.checkpoint_id, exc)
            raise
        if cp is not None:
            try:
                self.checkpoint_log.committed(cp)
            except OSError as exc:
                # Committed and prepared in the copy already: the copy is not behind; only the marker is missing.
                log.error("could not mark checkpoint %s as committed: %s", cp.checkpoint_id, exc)
            self.witnesses.publish(cp)

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

    def _require(self, actor: User, *roles: str, action: str) -> None:
        """Refuse, and ledger the refusal, unless `actor` holds one of `roles`."""
        try:
            require(actor, *roles, action=action)
        except PermissionDenied as exc:
            with self._tx() as (_, ledger):
                self._audit(ledger, actor, "permission.denied", object=action[:200], justification=exc.message)
            raise

    def _refused(self, actor: User, action: str, obj: str, reason: str, hint: str) -> PolicyRefusal:
        """`_refuse` with positional arguments, for the short checks of privacy actions."""
        return self._refuse(actor, action, object=obj, reason=reason, hint=hint)

    def _screen_reason(self, actor: User, action: str, obj: str, reason: str) -> None:
        """Refuse (audited) a decision whose free-text reason carries a prohibited label."""
        refusal = self.policy.screener.screen("reason", reason)
        if refusal is not None:
            raise self._refuse(actor, action, object=obj, reason=refusal.reason)

    def _record_policy(self) -> None:
        """Ledger the policy in force whenever it differs from the last one recorded."""
        with self.db.read() as session:
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
        self._require(actor, "admin", action="add users")
        with self._tx() as (session, ledger):
            user = UserRepository(session).create(name, password, roles, created_by=actor.user_id)
            self._audit(
                ledger, actor, "user.add", object=f"user:{user.name}", details={"roles": ",".join(sorted(user.roles))}
            )
        return user

    def users(self, actor: User) -> list[User]:
        """Every user (admins and auditors)."""
        self._require(actor, "admin", "auditor", action="list users")
        with self.db.read() as session:
            return UserRepository(session).list()

    def login(self, name: str, password: str, *, address: str = "local") -> tuple[User, str]:
        """Check a password and open a session; failures are audited and give no hint which part was wrong.

        A failure is counted on the account and on the client `address` before the password is checked (in the
        database, so parallel attempts and other processes count too); after `sign_in.max_failures` both are
        locked for `sign_in.lock_s` seconds.

        Raises:
            TooManyAttempts: The account or the address is locked.
            AuthError: Wrong name or password.
        """
        cfg = self.config.sign_in
        who = f"user:{name[:64]}"
        keys = [who, f"ip:{address[:64]}"]
        with self._tx() as (s, ledger):
            locked = ThrottleRepository(s).reserve(
                keys, now=self.now(), limit=cfg.max_failures, window_s=cfg.window_s, lock_s=cfg.lock_s
            )
            if locked is not None and locked[2]:
                ledger.append(
                    actor="anonymous",
                    action="auth.locked",
                    object=who,
                    details={"address": address, "locked": locked[0], "seconds": int(cfg.lock_s)},
                    source=self.origin,
                )
        if locked is not None:
            raise TooManyAttempts(
                "too many failed sign-ins; try again later", hint=f"wait {int(locked[1]) + 1} seconds"
            )
        with self.db.read() as s:
            user = UserRepository(s).verify_password(name, password)
        if user is None:
            with self._tx() as (_, ledger):
                ledger.append(
                    actor="anonymous",
                    action="auth.login_failed",
                    object=who,
                    details={"address": address},
                    source=self.origin,
                )
            raise AuthError("wrong user name or password", hint="check both and try again")
        with self._tx() as (s, ledger):
            ThrottleRepository(s).release(keys)
            token = UserRepository(s).open_session(user)
            self._audit(ledger, user, "auth.login", object=f"user:{user.name}", details={"address": address})
        return user, token

    def authenticate(self, token: str) -> User:
        """The user a session token belongs to."""
        with self.db.read() as session:
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

    def enroll(
        self,
        actor: User,
        name: str,
        photos: list[Path],
        *,
        consent: str,
        scope: list[str] | None = None,
        expires: date | None = None,
    ) -> EnrolResult:
        """Request the enrolment of a consenting person (e.g. staff at an access point); a second person approves it.

        The enrolment records the consent reference, the cameras (by name or purpose) the person may be recognised
        on and an expiry; it matches nobody until a different user with the approver role approves it
        (`people_approve`). Every photo is checked before anything is stored: one bad photo refuses the whole
        enrolment. Captured faces are never enrolled automatically: this is the only way into the gallery.

        Raises:
            EnrolmentError: A photo is unreadable, shows no face or more than one face, or the name is invalid.
            PolicyRefusal: A field carries a prohibited label, the consent record is missing, or the expiry is
                beyond the policy's maximum (audited).
        """
        self._require(actor, "admin", "operator", action="enrol people")
        name = name.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise EnrolmentError(f"invalid name {name!r}", hint="give 1-200 printable characters")
        if not photos:
            raise EnrolmentError("no photos given", hint="give one or more photos of the person")
        req = EnrolmentRequest(name=name, consent=consent.strip(), scope=tuple(scope or [ALL_CAMERAS]), expires=expires)
        today = self.now().date()
        refusal = check_enrolment(req, self.policy, today=today)
        if refusal is not None:
            raise self._refuse(
                actor, "enrol.refused", object=f"person:{name}", reason=refusal.reason, hint="see docs/governance.md"
            )
        expiry = resolved_expiry(req, self.policy, today=today)
        templates, crops = [], []
        for photo in photos:
            vector, crop, sha = self._face_template(photo)
            templates.append(NewTemplate(vector=vector, photo_sha256=sha))
            crops.append(crop)
        self.expire_enrolments()
        written = [self.media.save_encrypted(encode_jpeg(c), cipher=self.cipher, kind="enrolment") for c in crops]
        try:
            with self._tx() as (s, ledger):
                identity, added = GalleryRepository(s).add_templates(
                    name,
                    templates,
                    model=self.face_embedder.name,
                    cipher=self.cipher,
                    enrolment=Enrolment(
                        consent=req.consent,
                        scope=req.scope,
                        expires_at=wl.expiry_instant(expiry),
                        requester_id=actor.user_id,
                        photos=tuple(written),
                    ),
                    now=self.now(),
                )
                self._audit(
                    ledger,
                    actor,
                    "enrol",
                    object=f"person:{identity.person_id}",
                    justification=req.consent,
                    details={
                        "name": name,
                        "templates_added": added,
                        "basis": "consent",
                        "scope": ",".join(req.scope),
                        "expires": expiry.isoformat(),
                        "status": "pending",
                    },
                )
        except BaseException:
            for rel in written:
                self.media.delete(rel)
            raise
        return EnrolResult(identity=identity, added=added, skipped_duplicates=len(templates) - added)

    def people_approve(self, actor: User, person_id: int, *, reason: str = "") -> None:
        """Approve a pending enrolment; the approver must not be the one who enrolled the person."""
        self._decide_enrolment(actor, person_id, "approve", reason)

    def people_reject(self, actor: User, person_id: int, *, reason: str) -> None:
        """Reject a pending enrolment: its templates and photos are destroyed."""
        self._decide_enrolment(actor, person_id, "reject", reason)

    def _decide_enrolment(self, actor: User, person_id: int, decision: str, reason: str) -> None:
        self._require(actor, "approver", action=f"{decision} enrolments")
        obj = f"person:{person_id}"
        if decision == "reject" and not reason.strip():
            raise self._refuse(
                actor, "enrol.reject_refused", object=obj, reason="a rejection needs a reason", hint="add --reason TEXT"
            )
        self._screen_reason(actor, f"enrol.{decision}_refused", obj, reason)
        self.expire_enrolments()
        try:
            with self._tx() as (s, ledger):
                repo = GalleryRepository(s)
                row = repo.get_row(person_id)
                self._four_eyes(f"the enrolment of person {person_id}", row.status, row.enrolled_by, actor)
                destroyed = 0
                if decision == "reject":
                    destroyed = repo.destroy_templates(person_id)
                    for rel in json.loads(row.photos):
                        self.media.delete(rel)
                    row.photos = "[]"
                row.status = "approved" if decision == "approve" else "rejected"
                row.approver_id = actor.user_id
                row.decision_reason = reason.strip()
                row.decided_at = self.now()
                self._audit(
                    ledger,
                    actor,
                    f"enrol.{decision}",
                    object=obj,
                    justification=reason.strip(),
                    details={"templates_destroyed": destroyed} if decision == "reject" else {"scope": row.scope},
                )
        except _Refused as r:
            raise self._refuse(actor, f"enrol.{decision}_refused", object=obj, reason=r.reason, hint=r.hint) from None

    def expire_enrolments(self) -> list[int]:
        """Expire every enrolment past its expiry: it stops matching and its templates and photos are destroyed."""
        now = self.now()
        with self.db.read() as s:
            if not GalleryRepository(s).due_for_expiry(now):
                return []
        expired = []
        with self._tx() as (s, ledger):
            repo = GalleryRepository(s)
            for row in repo.due_for_expiry(now):
                destroyed = repo.destroy_templates(row.id)
                for rel in json.loads(row.photos):
                    self.media.delete(rel)
                row.photos = "[]"
                row.status = "expired"
                row.decided_at = now
                expired.append(row.id)
                self._audit(
                    ledger,
                    None,
                    "enrol.expired",
                    object=f"person:{row.id}",
                    details={"templates_destroyed": destroyed, "expires_at": iso_utc(row.expires_at)},
                )
        return expired

    def people(self, actor: User, *, status: str | None = None) -> list[PersonSummary]:
        """Every enrolment (pending, approved, rejected, expired), with consent, scope and expiry."""
        self._require(actor, "admin", "operator", "approver", "auditor", action="list enrolled people")
        self.expire_enrolments()
        with self._tx() as (s, ledger):
            rows = GalleryRepository(s).people(status=status)
            self._audit(ledger, actor, "people.view", details={"count": len(rows), "status": status or "all"})
        return rows

    def _person_photos(self, actor: User, person_id: int) -> list[bytes]:
        """An enrolment's photos (face crops), for whoever decides on or audits it (audited)."""
        self._require(actor, "approver", "auditor", "admin", action="see enrolment photos")
        with self.db.read() as s:
            rels = json.loads(GalleryRepository(s).get_row(person_id).photos)
        data = [self.media.read_encrypted(rel, cipher=self.cipher) for rel in rels]
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, "media.export", object=f"person:{person_id}", details={"files": len(data)})
        return data

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

    def watchlist_request(
        self, actor: User, req: wl.WatchlistRequest, photo: Path | None = None, *, plate: str | None = None
    ) -> int:
        """File a watchlist request; it matches nothing until a different user approves it.

        A face category needs `photo` (one face); a plate category (e.g. stolen-vehicle) needs `plate`.

        Raises:
            PolicyRefusal: A prohibited category or label, a missing legal basis, or an expiry beyond the maximum;
                the refusal is audited.
        """
        self._require(actor, "requester", action="request watchlist entries")
        kind = "plate" if plate is not None else "face"
        refusal = wl.check_request(req, self.policy, today=self.now().date(), kind=kind)
        if refusal is not None:
            raise self._refuse(
                actor,
                "watchlist.refused",
                object=f"watchlist-request:{req.list_name}",
                reason=refusal.reason,
                hint="watchlists may only hold lawful, allowed categories; see docs/governance.md",
            )
        if plate is not None:
            if photo is not None:
                raise InputError("a watchlist entry holds a face or a plate, not both", hint="give --photo or --plate")
            text = clean_plate(plate)
            if not 2 <= len(text) <= 10:
                raise InputError(f"plate {plate!r} is not 2-10 letters and digits", hint="e.g. --plate 123ABC02")
            template, model, rel, sha = text.encode(), wl.PLATE_MODEL, "", hashlib.sha256(text.encode()).hexdigest()
        else:
            if photo is None:
                raise InputError(f"category {req.category} watches faces", hint="give --photo")
            vector, crop, sha = self._face_template(photo)
            template, model = np.ascontiguousarray(vector, "<f4").tobytes(), self.face_embedder.name
            rel = self.media.save_encrypted(encode_jpeg(crop), cipher=self.cipher, kind="watchlist")
        try:
            with self._tx() as (s, ledger):
                entry_id = wl.WatchlistRepository(s).add(
                    req,
                    requester_id=actor.user_id,
                    template=template,
                    model=model,
                    photo=rel,
                    sha=sha,
                    cipher=self.cipher,
                    kind=kind,
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
            if rel:
                self.media.delete(rel)
            raise
        return entry_id

    def watchlist_approve(self, actor: User, entry_id: int, *, reason: str = "") -> None:
        """Approve a pending entry; the approver must not be its requester (checked inside the transaction)."""
        self._require(actor, "approver", action="approve watchlist entries")
        self._screen_reason(actor, "watchlist.approve_refused", f"watchlist:{entry_id}", reason)
        self.expire_watchlists()
        try:
            with self._tx() as (s, ledger):
                row = wl.WatchlistRepository(s).get_row(entry_id)
                self._four_eyes(f"entry {entry_id}", row.status, row.requester_id, actor)
                if self.policy.category(row.category) is None:
                    raise _Refused(f"category {row.category!r} is no longer allowed")
                row.status = wl.APPROVED
                row.approver_id = actor.user_id
                row.decision_reason = reason
                row.decided_at = self.now()
                self._audit(ledger, actor, "watchlist.approve", object=f"watchlist:{entry_id}", justification=reason)
        except _Refused as r:
            raise self._refuse(
                actor, "watchlist.approve_refused", object=f"watchlist:{entry_id}", reason=r.reason, hint=r.hint
            ) from None

    def watchlist_reject(self, actor: User, entry_id: int, *, reason: str) -> None:
        """Reject a pending entry; its template and photo are destroyed."""
        self._require(actor, "approver", action="reject watchlist entries")
        if not reason.strip():
            raise self._refuse(
                actor,
                "watchlist.reject_refused",
                object=f"watchlist:{entry_id}",
                reason="a rejection needs a reason",
                hint="add --reason TEXT",
            )
        self._screen_reason(actor, "watchlist.reject_refused", f"watchlist:{entry_id}", reason)
        try:
            with self._tx() as (s, ledger):
                repo = wl.WatchlistRepository(s)
                row = repo.get_row(entry_id)
                self._four_eyes(f"entry {entry_id}", row.status, row.requester_id, actor)
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
        except _Refused as r:
            raise self._refuse(
                actor, "watchlist.reject_refused", object=f"watchlist:{entry_id}", reason=r.reason, hint=r.hint
            ) from None

    @staticmethod
    def _four_eyes(what: str, status: str, requester_id: int | None, actor: User) -> None:
        refusal = decision_refusal(
            what, status=status, requester_id=requester_id, decider_id=actor.user_id, decider_name=actor.name
        )
        if refusal is not None:
            raise _Refused(refusal.reason, refusal.hint)

    def watchlist_show(self, actor: User, *, status: str | None = None) -> list[wl.WatchlistEntry]:
        """Watchlist entries (never their templates)."""
        self._require(actor, "requester", "approver", "reviewer", "auditor", "admin", action="view watchlists")
        self.expire_watchlists()
        with self._tx() as (s, ledger):
            rows = wl.WatchlistRepository(s).list(status=status)
            self._audit(ledger, actor, "watchlist.view", details={"count": len(rows), "status": status or "all"})
        return rows

    # -- analysis -----------------------------------------------------------------------------------------

    def _load_gallery(self, camera: str | None = None) -> NumpyGallery:
        """Approved, unexpired enrolments and watchlist entries in one index (enrolments only within their scope)."""
        model = self.face_embedder.name
        purpose = self.camera_config(camera).purpose if camera is not None else ""
        with self.db.read() as s:
            people_gallery = GalleryRepository(s).load(
                model=model, cipher=self.cipher, active_at=self.now(), camera=camera, purpose=purpose
            )
            wl_people, blobs, owners = wl.WatchlistRepository(s).active_identities(
                model=model, now=self.now(), policy=self.policy, cipher=self.cipher
            )
        people = list(people_gallery.people) + wl_people
        offset = len(people_gallery.people)
        vectors = [people_gallery.templates] + [np.frombuffer(b, dtype="<f4")[None, :] for b in blobs]
        templates = np.concatenate(vectors).astype(np.float32) if blobs else people_gallery.templates
        all_owners = np.concatenate([people_gallery.owners, np.asarray(owners, np.intp) + offset]).astype(np.intp)
        return build_gallery(templates, all_owners, people)

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
        """Run a camera's analytics over a source: gallery matches become events, watchlist hits alerts.

        A watchlist hit is a candidate alert waiting for reviewers, never a fact. Everything from the run is
        committed together at the end with its audit entries; if decoding fails part-way, nothing is stored and
        any snapshots written are removed. (`kuzet run` commits live cameras as they go instead.)

        Args:
            actor: The signed-in operator.
            source: File, folder or URL.
            camera: Camera name recorded on the events.
            fps: Frames analysed per second (video); None analyses every frame.
            on_start: Called once with the expected number of frames (None when unknown).
            on_frame: Called after each analysed frame (for progress bars).
        """
        self._require(actor, "admin", "operator", action="run analyses")
        self.maybe_purge()  # retention runs on its own schedule, not when someone remembers
        session = AnalysisSession(self, actor, camera=camera, source=source)
        try:
            with open_source(source, fps=fps, config=self.config.ingest) as frames:
                if on_start is not None:
                    on_start(frames.expected_frames)
                session.source = frames.name
                for frame in frames:
                    session.process(frame)
                    if on_frame is not None:
                        on_frame(frame)
                session.finish()
            stored = session.commit()
        except (KuzetError, KeyboardInterrupt, OSError):
            session.discard()
            raise
        traffic_result = None
        if session.traffic is not None:
            cam = session.camera_config
            cal = cam.traffic.calibration
            traffic_result = TrafficResult(
                stats=session.traffic.stats,
                passages=stored.passages,
                violations=stored.violations,
                per_line=counting_lines_summary(cam.traffic.lines, stored.passages),
                calibration_note=(cal.note or "4-point ground calibration") if cal is not None else None,
            )
        return AnalysisResult(
            run_id=stored.run_id,
            source=session.source,
            camera=camera,
            events=stored.events,
            alert_ids=[a.id for a in stored.alerts],
            stats=session.stats,
            seconds=(self.now() - session.started).total_seconds(),
            traffic=traffic_result,
        )

    def _plate_hits(self, plates: list[PlateTrack], written: list[str]) -> list[NewAlert]:
        """Vehicles whose voted plate is on an approved, unexpired plate watchlist: candidate alerts for review."""
        if not plates:
            return []
        with self.db.read() as s:
            watched = wl.WatchlistRepository(s).active_plates(now=self.now(), policy=self.policy, cipher=self.cipher)
        alerts = []
        for pt in plates:
            entry = watched.get(pt.plate.text)
            if entry is None:
                continue
            snapshots, originals = [], []
            if pt.crop is not None and pt.crop.size:
                snapshots.append(self.media.save_jpeg(pt.crop))
                originals.append(self.media.save_encrypted(encode_jpeg(pt.crop), cipher=self.cipher))
                written.extend(snapshots + originals)
            category = self._entry_category(entry.person_id)
            alerts.append(
                NewAlert(
                    entry_id=entry.person_id,
                    score=round(pt.plate.score, 4),
                    threshold=1.0,
                    start=round(pt.start, 3),
                    end=round(pt.end, 3),
                    track_id=pt.track_id,
                    snapshots=snapshots,
                    originals=originals,
                    required_reviews=category.required_reviews if category else 2,
                )
            )
        return alerts

    def _store_traffic(
        self,
        s: Session,
        ledger: AuditLedger,
        actor: User,
        run_id: int,
        camera: str,
        passages: list[Passage],
        evidence: list[tuple[Violation, str, str]],
        plates_read: int,
    ) -> list[StoredViolation]:
        """Passages and violations of one run, each violation's evidence hash in the ledger."""
        now = self.now()
        for p in passages:
            s.add(
                PassageRow(
                    run_id=run_id,
                    camera=camera,
                    line=p.line,
                    direction=p.direction,
                    label=p.label,
                    track_id=p.track_id,
                    at=round(p.pts, 3),
                    speed_kmh=p.speed_kmh,
                    speed_err_kmh=p.speed_err_kmh,
                    plate=p.plate,
                    created_at=now,
                )
            )
        stored = []
        for v, rel_dir, digest in evidence:
            row = ViolationRow(
                run_id=run_id,
                camera=camera,
                kind=v.kind,
                place=v.where,
                track_id=v.track_id,
                at=round(v.pts, 3),
                plate=v.plate,
                measurements=json.dumps(v.measurements, sort_keys=True),
                evidence=rel_dir,
                evidence_sha256=digest,
                created_at=now,
            )
            s.add(row)
            s.flush()
            self._audit(
                ledger,
                actor,
                "violation.recorded",
                object=f"violation:{row.id}",
                details={"kind": v.kind, "camera": camera, "evidence": rel_dir, "evidence_sha256": digest},
            )
            stored.append(
                StoredViolation(row.id, v.kind, v.where, row.at, v.plate, dict(v.measurements), rel_dir, digest)
            )
        self._audit(
            ledger,
            actor,
            "traffic.run",
            object=f"run:{run_id}",
            details={
                "camera": camera,
                "passages": len(passages),
                "violations": len(stored),
                "plates_read": plates_read,
            },
        )
        return stored

    def _person_active(self, person_id: int, camera: str) -> bool:
        """Whether an enrolment is approved, unexpired and covers `camera` now (checked at each decision)."""
        with self.db.read() as s:
            row = s.get(PersonRow, person_id)
            if row is None or row.status != "approved":
                return False
            if row.expires_at is not None and aware(row.expires_at) <= self.now():
                return False
            return in_scope(json.loads(row.scope), camera=camera, purpose=self.camera_config(camera).purpose)

    def _entry_active(self, entry_id: int) -> bool:
        """Whether a watchlist entry is approved and unexpired now."""
        with self.db.read() as s:
            row = s.get(WatchlistEntryRow, entry_id)
            return row is not None and row.status == wl.APPROVED and aware(row.expires_at) > self.now()

    def _entry_category(self, entry_id: int) -> CategoryPolicyT | None:
        with self.db.read() as s:
            row = s.get(WatchlistEntryRow, entry_id)
            return None if row is None else self.policy.category(row.category)

    def events(
        self,
        actor: User,
        *,
        camera: str | None = None,
        identity: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
        justification: str = "",
    ) -> list[Event]:
        """Stored events, newest first; viewing them is audited."""
        self._require(actor, "admin", "operator", "reviewer", "auditor", action="view events")
        with self._tx() as (s, ledger):
            rows = EventRepository(s).list(
                camera=camera, identity=identity, limit=limit, offset=offset, since=since, until=until
            )
            self._audit(
                ledger,
                actor,
                "events.view",
                justification=justification,
                details={"camera": camera, "identity": identity, "count": len(rows)},
            )
        return rows

    def traffic_records(
        self,
        actor: User,
        kind: str,
        *,
        camera: str | None = None,
        plate: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, object]]:
        """Stored passages or violations (`kind`), newest first; viewing them is audited (plates are personal)."""
        self._require(actor, "admin", "operator", "reviewer", "auditor", action=f"view traffic {kind}")
        if kind not in ("passages", "violations"):
            raise InputError(f"no traffic records of kind {kind!r}", hint="passages or violations")
        row_type: type[PassageRow] | type[ViolationRow] = PassageRow if kind == "passages" else ViolationRow
        query = select(row_type).order_by(row_type.id.desc()).limit(limit).offset(offset)
        if camera:
            query = query.where(row_type.camera == camera)
        if plate:
            query = query.where(row_type.plate == clean_plate(plate))
        with self._tx() as (s, ledger):
            rows = cast("list[PassageRow | ViolationRow]", list(s.scalars(query)))
            out = [_traffic_dict(r) for r in rows]
            self._audit(
                ledger,
                actor,
                f"traffic.{kind}.view",
                details={"camera": camera, "plate_searched": bool(plate), "count": len(out)},
            )
        return out

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
        self._require(actor, "reviewer", "auditor", action="view alerts")
        with self._tx() as (s, ledger):
            alerts = AlertRepository(s).list(status=status)
            self._audit(ledger, actor, "review.view", details={"count": len(alerts), "status": status or "all"})
        return alerts

    def review(self, actor: User, alert_id: int, decision: str, *, reason: str) -> str:
        """Confirm or reject an alert; it is confirmed once enough different reviewers confirm it.

        Returns:
            The alert's status after the decision.
        """
        self._require(actor, "reviewer", action="review alerts")
        self._screen_reason(actor, "review.refused", f"alert:{alert_id}", reason)
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

    def audit_verify(self, actor: User | None, *, trusted: list[TrustedCheckpoint] | None = None) -> VerifyReport:
        """Verify the whole ledger (and that it extends every `trusted` checkpoint), in a read transaction.

        The check is recorded only when it passes (a broken ledger is left as found).
        """
        if actor is not None:
            self._require(actor, "auditor", "admin", action="verify the audit ledger")
        with self.db.read() as s:
            report = verify_ledger(
                s, self.signer, log_file=self.checkpoint_log.path, trusted=trusted or [], fresh=self.db.read
            )
        if report.ok and actor is not None:
            with self._tx() as (_, ledger):
                self._audit(
                    ledger,
                    actor,
                    "audit.verify",
                    details={"entries": report.entries, "ok": True, "trusted_checkpoints": report.trusted},
                )
        return report

    def audit_log(
        self, actor: User, *, start: int = 1, limit: int = 1000, action: str | None = None
    ) -> list[AuditEntry]:
        """Ledger entries, oldest first."""
        self._require(actor, "auditor", "admin", action="read the audit ledger")
        with self._tx() as (_, ledger):
            rows = ledger.entries(start=start, limit=limit, action=action)
            self._audit(ledger, actor, "audit.view", details={"start": start, "count": len(rows)})
        return rows

    def audit_checkpoint(self, actor: User) -> Checkpoint:
        """Sign a checkpoint of the ledger as it is now (it covers this request's own entry)."""
        self._require(actor, "auditor", "admin", action="sign ledger checkpoints")
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, "audit.checkpoint")
        with self.db.read() as s:
            cp = AuditLedger(s).latest_checkpoint()
        assert cp is not None
        return cp

    def audit_latest_checkpoint(self, actor: User) -> Checkpoint:
        """The newest signed checkpoint, after recording that `actor` fetched it (so it covers the fetch)."""
        self._require(actor, "auditor", action="fetch ledger checkpoints")
        return self.audit_checkpoint_view(actor)

    def audit_checkpoint_view(self, actor: User) -> Checkpoint:
        """Record a checkpoint fetch and return the checkpoint that covers it."""
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, "audit.checkpoint_view")
        with self.db.read() as s:
            cp = AuditLedger(s).latest_checkpoint()
        assert cp is not None
        return cp

    def audit_consistency_sizes(self, actor: User, first: int, second: int) -> list[str]:
        """Consistency proof (hex hashes) from the ledger's first `first` entries to its first `second`."""
        self._require(actor, "auditor", action="prove ledger consistency")
        with self.db.read() as s:
            leaves = AuditLedger(s).leaves(second)
        if not 0 < first <= second or second > len(leaves):
            raise InputError(
                f"no consistency proof from {first} to {second} entries: the ledger holds {len(leaves)}",
                hint="give 1 <= first <= second <= the ledger's size",
            )
        return [h.hex() for h in merkle.consistency_proof(first, leaves)]

    def audit_key_rotations(self, actor: User) -> list[KeyRotation]:
        """Every hand-over of the checkpoint signing key, with the old key's signature."""
        self._require(actor, "auditor", "admin", action="read ledger key rotations")
        with self.db.read() as s:
            return AuditLedger(s).key_rotations()

    def audit_rotate_key(self, actor: User) -> str:
        """Hand checkpoint signing to a new key: the old key signs the hand-over into the ledger; returns the new id.

        The new key is staged beside the old one, the hand-over and the first checkpoint it signs commit together,
        and only then does the new key replace the old (a crash in between is finished or undone at the next start).
        """
        self._require(actor, "admin", action="rotate the ledger signing key")
        keys = self.data_dir / "keys"
        old, new = self.signer, LedgerSigner.generate()
        new.save(keys, staged=True)
        try:
            with self._tx(signer=new) as (_, ledger):
                ledger.record_key_rotation(old, new, actor=actor.name, source=self.origin)
        except BaseException:
            LedgerSigner.discard_staged(keys)
            raise
        LedgerSigner.promote_staged(keys)
        self.__dict__["signer"] = new
        return new.key_id

    def audit_prove(self, actor: User, seq: int) -> InclusionProof:
        """Inclusion proof of entry `seq` in the newest checkpoint."""
        self._require(actor, "auditor", "admin", action="prove ledger entries")
        with self.db.read() as s:
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
        self._require(actor, "auditor", "admin", action="prove ledger consistency")
        with self.db.read() as s:
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
        self._require(actor, "auditor", "admin", action="list ledger checkpoints")
        with self.db.read() as s:
            return AuditLedger(s).checkpoints()

    # -- privacy: unredacted access, legal holds, retention ------------------------------------------------

    def access_grant(self, actor: User, name: str, *, hours: float, justification: str) -> datetime:
        """Let user `name` see unredacted media for `hours` (admins); returns when the grant ends."""
        self._require(actor, "admin", action="grant unredacted access")
        if len(justification.strip()) < 10:
            raise self._refused(
                actor,
                "access.grant_refused",
                f"user:{name[:64]}",
                "a grant needs a written justification",
                "explain why in at least 10 characters",
            )
        if not 0 < hours <= 72:
            raise self._refused(
                actor,
                "access.grant_refused",
                f"user:{name[:64]}",
                "a grant lasts between a few minutes and 72 hours",
                "e.g. --hours 4",
            )
        with self._tx() as (s, ledger):
            user = next((u for u in UserRepository(s).list() if u.name == name), None)
            if user is None:
                raise NotFoundError(f"user {name!r} does not exist", hint="see `kuzet users list`")
            until = self.now() + timedelta(hours=hours)
            s.add(
                AccessGrantRow(
                    user_id=user.user_id,
                    granted_by=actor.user_id,
                    justification=justification.strip(),
                    created_at=self.now(),
                    expires_at=until,
                )
            )
            self._audit(
                ledger,
                actor,
                "access.grant",
                object=f"user:{name}",
                justification=justification.strip(),
                details={"hours": hours, "until": until.isoformat()},
            )
        return until

    def _require_unredacted(self, actor: User, action: str, obj: str, what: str) -> None:
        """Refuse (and ledger the refusal) unless `actor` may see unredacted `what`."""
        with self.db.read() as s:
            allowed = self._may_see_unredacted(s, actor)
        if not allowed:
            refusal = self._refuse(
                actor,
                action,
                object=obj,
                reason=f"{actor.name} may not see unredacted {what}: it needs the reviewer or auditor role or a grant",
                hint="ask an administrator for `kuzet access grant`",
            )
            raise PermissionDenied(refusal.message, hint=refusal.hint)

    def _may_see_unredacted(self, s: Session, actor: User) -> bool:
        if actor.has("reviewer", "auditor"):
            return True
        now = self.now()
        grants = s.scalars(select(AccessGrantRow).where(AccessGrantRow.user_id == actor.user_id))
        return any((g.expires_at if g.expires_at.tzinfo else g.expires_at.replace(tzinfo=UTC)) > now for g in grants)

    def media_export(
        self, actor: User, kind: str, object_id: int, *, unredacted: bool, justification: str
    ) -> list[bytes]:
        """JPEG bytes of an event's snapshot or an alert's best shots; every export is audited.

        The unredacted originals need the reviewer or auditor role or a current grant, and a written justification.
        """
        if kind == "watchlist":
            return [self._watchlist_photo(actor, object_id)]
        if kind == "person":
            return self._person_photos(actor, object_id)
        self._require(actor, "admin", "operator", "reviewer", "auditor", action="export media")
        if kind not in ("event", "alert"):
            raise KuzetError(f"unknown kind {kind!r}", hint="use event, alert or watchlist")
        if unredacted and len(justification.strip()) < 10:
            raise self._refuse(
                actor,
                "media.export_refused",
                object=f"{kind}:{object_id}",
                reason="unredacted access needs a written justification of at least 10 characters",
            )
        if unredacted:
            self._require_unredacted(actor, "media.export_refused", f"{kind}:{object_id}", "media")
        with self.db.read() as s:
            if kind == "event":
                ev = s.get(EventRow, object_id)
                if ev is None:
                    raise NotFoundError(f"event {object_id} does not exist", hint="see `kuzet events`")
                redacted, originals = [ev.snapshot], [ev.original]
            else:
                al = s.get(AlertRow, object_id)
                if al is None:
                    raise NotFoundError(f"alert {object_id} does not exist", hint="see `kuzet review list`")
                redacted, originals = json.loads(al.snapshots), json.loads(al.originals)
        if unredacted:
            data = [self.media.read_encrypted(rel, cipher=self.cipher) for rel in originals if rel]
        else:
            data = [self.media.path(rel).read_bytes() for rel in redacted if rel]
        with self._tx() as (_, ledger):
            self._audit(
                ledger,
                actor,
                "media.export",
                object=f"{kind}:{object_id}",
                justification=justification.strip(),
                details={"unredacted": unredacted, "files": len(data)},
            )
        return data

    def recordings(self, actor: User, *, camera: str | None = None) -> list[Recording]:
        """Kept recording segments (newest first) with their camera, size and time; listing them is audited."""
        self._require(actor, "admin", "operator", "reviewer", "auditor", action="list recordings")
        root = self.media.root / "recordings"
        found = []
        if root.is_dir():
            for path in root.rglob("*.mp4.enc"):
                rel = path.relative_to(self.media.root).as_posix()
                cam = rel.split("/")[1]
                if camera is None or cam == camera:
                    st = path.stat()
                    found.append(Recording(rel, cam, datetime.fromtimestamp(st.st_mtime, UTC), st.st_size))
        found.sort(key=lambda r: (r.written_at, r.path), reverse=True)
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, "recording.list", details={"camera": camera or "", "count": len(found)})
        return found

    def recording_export(self, actor: User, rel: str, out: Path, *, unredacted: bool, justification: str) -> None:
        """Write a recording segment to `out` (MP4): every face and plate hidden unless `unredacted`; audited.

        Any export needs a written justification; the unredacted original also the reviewer or auditor role or a
        current access grant.
        """
        self._require(actor, "admin", "operator", "reviewer", "auditor", action="export recordings")
        if not rel.startswith("recordings/") or not rel.endswith(".mp4.enc"):
            raise InputError(f"{rel!r} is not a recording", hint="take a path from `kuzet recordings list`")
        if len(justification.strip()) < 10:
            raise self._refuse(
                actor,
                "recording.export_refused",
                object=rel,
                reason="exporting a recording needs a written justification of at least 10 characters",
            )
        if unredacted:
            self._require_unredacted(actor, "recording.export_refused", rel, "recordings")
        data = self.media.read_encrypted(rel, cipher=self.cipher)
        out.parent.mkdir(parents=True, exist_ok=True)
        if unredacted:
            out.write_bytes(data)
        else:
            from kuzet.governance.redaction import redact_video

            with tempfile.TemporaryDirectory() as tmp:
                plain = Path(tmp) / "segment.mp4"
                plain.write_bytes(data)  # decrypted only in a private temporary folder, removed at once
                redact_video(plain, out, self.video_redactor, face_every=1, plate_every=5)
        with self._tx() as (_, ledger):
            self._audit(
                ledger,
                actor,
                "recording.export",
                object=rel,
                justification=justification.strip(),
                details={"unredacted": unredacted},
            )

    def _watchlist_photo(self, actor: User, entry_id: int) -> bytes:
        """The enrolled photo of a watchlist entry, for the people who decide on it (audited)."""
        self._require(actor, "reviewer", "approver", "auditor", action="see watchlist photos")
        with self.db.read() as s:
            row = s.get(WatchlistEntryRow, entry_id)
            if row is None or not row.photo:
                raise NotFoundError(f"watchlist entry {entry_id} has no photo", hint="it expired or was rejected")
            rel = row.photo
        data = self._media_bytes(rel)
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, "media.export", object=f"watchlist:{entry_id}", details={"unredacted": False})
        return data

    def _media_bytes(self, rel: str) -> bytes:
        """A stored file's bytes, decrypted when it is one of the encrypted kinds."""
        if rel.endswith(".enc"):
            return self.media.read_encrypted(rel, cipher=self.cipher)
        return self.media.path(rel).read_bytes()

    def _encrypt_plain_watchlist_photos(self) -> None:
        """Watchlist photos stored in the clear by an older kuzet: encrypted like every other original."""
        with self.db.read() as s:
            plain = [
                (i, rel)
                for i, rel in s.execute(select(WatchlistEntryRow.id, WatchlistEntryRow.photo))
                if rel and not rel.endswith(".enc")
            ]
        for entry_id, rel in plain:
            path = self.media.path(rel)
            if not path.is_file():
                continue
            new = self.media.save_encrypted(path.read_bytes(), cipher=self.cipher, kind="watchlist")
            with self._tx() as (s, ledger):
                row = s.get(WatchlistEntryRow, entry_id)
                if row is None or row.photo != rel:
                    self.media.delete(new)
                    continue
                row.photo = new
                self._audit(ledger, None, "media.encrypted", object=f"watchlist:{entry_id}")
            self.media.delete(rel)

    def hold_add(self, actor: User, case: str, object_type: str, object_id: int, *, reason: str) -> int:
        """Put an event, alert, person, watchlist entry or traffic violation under legal hold for a case."""
        self._require(actor, "admin", "auditor", "approver", action="place legal holds")
        if object_type not in HOLD_TYPES:
            raise KuzetError(f"cannot hold a {object_type!r}", hint=f"hold one of: {', '.join(HOLD_TYPES)}")
        if not case.strip() or not reason.strip():
            raise self._refused(
                actor,
                "hold.refused",
                f"{object_type}:{object_id}",
                "a hold needs a case reference and a reason",
                "give --case and --reason",
            )
        with self._tx() as (s, ledger):
            row = HoldRow(
                case_ref=case.strip(),
                object_type=object_type,
                object_id=object_id,
                reason=reason.strip(),
                created_by=actor.user_id,
                created_at=self.now(),
                released_at=None,
            )
            s.add(row)
            s.flush()
            self._audit(
                ledger,
                actor,
                "hold.add",
                object=f"{object_type}:{object_id}",
                justification=reason.strip(),
                details={"case": case.strip()},
            )
            return row.id

    def hold_release(self, actor: User, case: str, *, reason: str) -> int:
        """Release every hold of a case; returns how many."""
        self._require(actor, "admin", "auditor", "approver", action="release legal holds")
        if len(reason.strip()) < 10:
            raise self._refused(
                actor,
                "hold.release_refused",
                f"case:{case[:100]}",
                "releasing a hold needs a written reason",
                "explain in at least 10 characters why the case no longer needs the records",
            )
        with self._tx() as (s, ledger):
            rows = list(s.scalars(select(HoldRow).where(HoldRow.case_ref == case, HoldRow.released_at.is_(None))))
            for r in rows:
                r.released_at = self.now()
            self._audit(
                ledger,
                actor,
                "hold.release",
                object=f"case:{case}",
                justification=reason.strip(),
                details={"holds": len(rows)},
            )
        return len(rows)

    def holds(self, actor: User) -> list[dict[str, object]]:
        """Active holds."""
        self._require(actor, "admin", "auditor", "approver", action="list legal holds")
        with self.db.read() as s:
            rows = s.scalars(select(HoldRow).where(HoldRow.released_at.is_(None)).order_by(HoldRow.id))
            return [
                {"id": r.id, "case": r.case_ref, "object": f"{r.object_type}:{r.object_id}", "reason": r.reason}
                for r in rows
            ]

    def retention_run(self, actor: User | None) -> PurgeReport:
        """Delete what the policy's retention periods say is due (not what is on hold); audited with counts."""
        if actor is not None:
            self._require(actor, "admin", "auditor", "operator", action="run retention")
        self.expire_watchlists()
        self.expire_enrolments()
        with self._tx() as (s, ledger):
            report = purge(s, self.media, self.policy.model.retention, self.now())
            self._audit(ledger, actor, "retention.purge", details=report.details())
        return report

    def maybe_purge(self) -> PurgeReport | None:
        """Run retention on its own schedule: when the last purge is older than `retention.interval_hours`."""
        with self.db.read() as s:
            last = s.scalars(
                select(AuditEntryRow.ts)
                .where(AuditEntryRow.action == "retention.purge")
                .order_by(AuditEntryRow.seq.desc())
                .limit(1)
            ).first()
        interval = timedelta(hours=self.policy.model.retention.interval_hours)
        if last is not None and datetime.fromisoformat(last) > self.now() - interval:
            return None
        return self.retention_run(None)

    # -- subject access and erasure ---------------------------------------------------------------------------

    def _subject_matches(self, photo: Path) -> tuple[list[tuple[int, str, float]], list[tuple[int, str, float]]]:
        """People and watchlist entries whose templates match the face in `photo`: (id, name, score)."""
        vector, _, _ = self._face_template(photo)
        people_gallery = None
        with self.db.read() as s:
            people_gallery = GalleryRepository(s).load(model=self.face_embedder.name, cipher=self.cipher)
            entries = [
                (row.id, row.subject_name, row.category, blob)
                for row, blob in s.execute(
                    select(WatchlistEntryRow, WatchlistTemplateRow.vector).join(
                        WatchlistTemplateRow, WatchlistTemplateRow.entry_id == WatchlistEntryRow.id
                    )
                )
            ]
        threshold = self.config.recognition.threshold
        people = []
        if len(people_gallery):
            sims = people_gallery.person_similarities(vector[None, :])[0]
            people = [
                (p.person_id, p.name, float(sims[i]))
                for i, p in enumerate(people_gallery.people)
                if sims[i] >= threshold
            ]
        matched_entries = []
        for entry_id, name, category, blob in entries:
            template = np.frombuffer(self.cipher.decrypt(blob, context=f"watchlist:{entry_id}"), dtype="<f4")
            cat = self.policy.category(category)
            score = float(template @ vector)
            if score >= (cat.threshold if cat else threshold):
                matched_entries.append((entry_id, name, score))
        return people, matched_entries

    def subject_search(self, actor: User, photo: Path, *, justification: str) -> dict[str, object]:
        """What kuzet holds about the person in `photo`: gallery records, events, watchlist entries, alerts, media."""
        self._require(actor, "admin", "auditor", action="search for a data subject")
        if len(justification.strip()) < 10:
            raise self._refused(
                actor,
                "subject.search_refused",
                "subject",
                "a subject search needs a written justification",
                "e.g. --justification 'access request 2026-17'",
            )
        people, entries = self._subject_matches(photo)
        person_ids = [p[0] for p in people]
        entry_ids = [e[0] for e in entries]
        with self.db.read() as s:
            events = list(s.scalars(select(EventRow).where(EventRow.person_id.in_(person_ids)).order_by(EventRow.id)))
            alerts = list(s.scalars(select(AlertRow).where(AlertRow.entry_id.in_(entry_ids)).order_by(AlertRow.id)))
            wl_rows = [s.get(WatchlistEntryRow, i) for i in entry_ids]
        report: dict[str, object] = {
            "people": [{"person_id": i, "name": n, "score": round(sc, 4)} for i, n, sc in people],
            "events": [
                {
                    "id": e.id,
                    "camera": e.camera,
                    "start": e.start,
                    "end": e.end,
                    "source": e.source,
                    "snapshot": e.snapshot,
                    "created_at": e.created_at.isoformat(),
                }
                for e in events
            ],
            "watchlist_entries": [
                {
                    "id": r.id,
                    "list": r.list_name,
                    "category": r.category,
                    "legal_basis": r.legal_basis,
                    "reference": r.reference,
                    "status": r.status,
                    "expires_at": r.expires_at.isoformat(),
                }
                for r in wl_rows
                if r is not None
            ],
            "alerts": [{"id": a.id, "camera": a.camera, "status": a.status, "start": a.start} for a in alerts],
            "media_files": sum(2 for _ in events) + sum(len(json.loads(a.snapshots)) * 2 for a in alerts),
        }
        with self._tx() as (_, ledger):
            self._audit(
                ledger,
                actor,
                "subject.search",
                justification=justification.strip(),
                details={
                    "people": len(people),
                    "events": len(events),
                    "entries": len(entry_ids),
                    "alerts": len(alerts),
                },
            )
        return report

    def subject_erase(self, actor: User, photo: Path, *, justification: str) -> dict[str, object]:
        """Erase the consented-gallery data of the person in `photo` (person, templates, events, media).

        Exceptions the policy allows are kept and reported: anything under legal hold, and watchlist entries (they
        rest on a legal basis and end by rejection or expiry).
        """
        self._require(actor, "admin", "auditor", action="erase a data subject")
        if len(justification.strip()) < 10:
            raise self._refused(
                actor,
                "subject.erase_refused",
                "subject",
                "an erasure needs a written justification",
                "e.g. --justification 'erasure request 2026-18'",
            )
        people, entries = self._subject_matches(photo)
        erased_people = erased_events = 0
        kept: list[str] = [f"watchlist entry {e[0]}: lawful basis, ends by rejection or expiry" for e in entries]
        report = PurgeReport()
        with self._tx() as (s, ledger):
            held = HeldSet(s)
            for person_id, _, _ in people:
                if person_id in held.ids["person"]:
                    kept.append(f"person {person_id}: under legal hold")
                    continue
                for ev in list(s.scalars(select(EventRow).where(EventRow.person_id == person_id))):
                    if held.event(ev):
                        kept.append(f"event {ev.id}: under legal hold")
                        continue
                    delete_event(s, self.media, ev, report)
                    erased_events += 1
                s.flush()
                if s.scalar(select(func.count()).select_from(EventRow).where(EventRow.person_id == person_id)):
                    continue  # held events still point at the person
                person = s.get(PersonRow, person_id)
                if person is not None:
                    s.delete(person)
                    erased_people += 1
            self._audit(
                ledger,
                actor,
                "subject.erase",
                justification=justification.strip(),
                details={"people": erased_people, "events": erased_events, "files": report.files, "kept": len(kept)},
            )
        return {
            "people_erased": erased_people,
            "events_erased": erased_events,
            "files_deleted": report.files,
            "kept": kept,
        }

    # -- keys and reports -----------------------------------------------------------------------------------

    def keys_rotate(self, actor: User, *, grace_s: float = 2.0) -> str:
        """Encrypt from now on with a new data key and move every template and file onto it; returns the new key id.

        Safe while `kuzet serve` and `kuzet run` are running: the new ring is written first, with the old keys kept
        decrypt-only, and every process looks at the ring before it encrypts. After `grace_s` seconds (encryptions
        already under way finish), everything is re-encrypted; files written meanwhile under an old key are caught by
        a second scan; only then are old keys that no record uses removed from the ring.
        """
        self._require(actor, "admin", action="rotate data keys")
        old = self.cipher
        if old.source == ENV_KEY:
            raise KuzetError(
                "the data key comes from KUZET_DATA_KEY, so kuzet cannot replace it",
                hint="unset it to use the key ring in DATA_DIR/keys, or rotate the key in your secret store",
            )
        keys_dir = self.data_dir / "keys"
        ring = old.rotated()
        ring.save(keys_dir)  # from here on every process encrypts with the new key; the old ones still decrypt
        self.__dict__["cipher"] = ring
        time.sleep(grace_s)
        templates = self._reencrypt_templates(ring)
        files = 0
        for _ in range(3):  # a file written under an old key while the previous scan ran is caught by the next
            moved = self._reencrypt_files(ring)
            files += moved
            if not moved:
                break
        in_use = self._keys_in_use()
        final = ring.without({k for k in ring.retired if k not in in_use})
        final.save(keys_dir)
        self.__dict__["cipher"] = final
        with self._tx() as (_, ledger):
            self._audit(
                ledger,
                actor,
                "keys.rotate",
                object=f"key:{final.active}",
                details={
                    "templates": templates,
                    "files": files,
                    "retired": ",".join(sorted(set(ring.keys) - set(final.keys))),
                    "still_in_use": ",".join(sorted(final.retired)),
                },
            )
        return final.active

    def _reencrypt_templates(self, ring: DataCipher) -> int:
        """Re-encrypt every template not under the active key (one transaction); returns how many."""
        n = 0
        with self._tx() as (s, _):
            for row in s.scalars(select(TemplateRow)):
                if blob_key_id(row.vector) != ring.active:
                    ctx = f"person:{row.person_id}"
                    row.vector = ring.encrypt(ring.decrypt(row.vector, context=ctx), context=ctx)
                    n += 1
            for wrow in s.scalars(select(WatchlistTemplateRow)):
                if blob_key_id(wrow.vector) != ring.active:
                    ctx = f"watchlist:{wrow.entry_id}"
                    wrow.vector = ring.encrypt(ring.decrypt(wrow.vector, context=ctx), context=ctx)
                    n += 1
        return n

    def _reencrypt_files(self, ring: DataCipher) -> int:
        """Re-encrypt every media file not under the active key; returns how many (files purged meanwhile skipped)."""
        n = 0
        for rel in self.media.encrypted_files():
            try:
                if self.media.key_id(rel) != ring.active:
                    self.media.reencrypt(rel, old=ring, new=ring)
                    n += 1
            except (FileNotFoundError, StoreError) as exc:
                if self.media.path(rel).exists():
                    raise
                log.info("%s was deleted during key rotation (%s)", rel, exc)
        return n

    def _keys_in_use(self) -> set[str]:
        """Ids of every data key some template or media file is encrypted with."""
        with self.db.read() as s:
            used = {blob_key_id(v) for v in s.scalars(select(TemplateRow.vector))}
            used |= {blob_key_id(v) for v in s.scalars(select(WatchlistTemplateRow.vector))}
        for rel in self.media.encrypted_files():
            with contextlib.suppress(FileNotFoundError):
                used.add(self.media.key_id(rel))
        return used - {""}

    def transparency_report(self, actor: User, start: date, end: date) -> TransparencyReport:
        """The public report for a period (aggregates only); producing it is audited."""
        self._require(actor, "admin", "auditor", action="produce the transparency report")
        if end < start:
            raise KuzetError("--to is before --from", hint="give the period's first and last day")
        from cryptography.hazmat.primitives import serialization

        pem = self.signer.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, "report.export", details={"from": start.isoformat(), "to": end.isoformat()})
        digest = hashlib.sha256(bytes.fromhex(self.signer.public_hex)).hexdigest()
        fingerprint = "SHA256:" + ":".join(digest[i : i + 4] for i in range(0, 64, 4))
        with self.db.read() as s:
            return build_report(s, self.policy, start=start, end=end, public_key_pem=pem, key_fingerprint=fingerprint)

    # -- dashboard helpers ----------------------------------------------------------------------------------

    def cameras(self, actor: User) -> list[dict[str, object]]:
        """Configured cameras and every camera seen in an analysis, with run counts."""
        self._require(actor, "admin", "operator", "reviewer", "auditor", action="view cameras")
        from kuzet.ingest.sources import redact_url
        from kuzet.store.models import AnalysisRunRow

        out: dict[str, dict[str, object]] = {
            c.name: {
                "name": c.name,
                "source": redact_url(c.source),
                "fps": c.fps,
                "runs": 0,
                "frames": 0,
                "last_run": "",
            }
            for c in self.config.cameras
        }
        with self.db.read() as s:
            for run in s.scalars(select(AnalysisRunRow).order_by(AnalysisRunRow.id)):
                cam = out.setdefault(
                    run.camera,
                    {"name": run.camera, "source": run.source, "fps": None, "runs": 0, "frames": 0, "last_run": ""},
                )
                cam["runs"] = int(str(cam["runs"])) + 1
                cam["frames"] = int(str(cam["frames"])) + run.frames
                cam["last_run"] = run.finished_at.isoformat(timespec="seconds")
        try:
            live = {c.camera: c for c in read_status(self.data_dir).cameras}
        except NotFoundError:
            live = {}
        for cam in out.values():
            st = live.get(str(cam["name"]))
            cam["state"] = st.state if st is not None else "-"
            cam["reason"] = st.reason if st is not None else ""
        return list(out.values())

    def check_camera_purposes(self, actor: User, cameras: list[CameraConfig]) -> None:
        """Every live camera states a purpose, and none names a prohibited target (refusals are audited).

        Raises:
            ConfigError: A camera has no purpose.
            PolicyRefusal: A purpose carries a prohibited label (e.g. "watch activists").

        """
        missing = [c.name for c in cameras if not c.purpose.strip()]
        if missing:
            raise ConfigError(
                f"camera(s) {', '.join(missing)} state no purpose",
                hint="add `purpose: ...` to each camera: why it is analysed (e.g. traffic safety at junction 4)",
            )
        for cam in cameras:
            refusal = self.policy.screener.screen("camera purpose", cam.purpose)
            if refusal is not None:
                raise self._refuse(actor, "service.refused", object=f"camera:{cam.name}", reason=refusal.reason)

    def record_service_event(self, actor: User, action: str, *, details: Details) -> None:
        """Ledger a service-level action (`kuzet run` starting or stopping, with what it runs and sends where)."""
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, action, details=details)

    def secrets(self) -> Secrets:
        """The secrets file (`run.secrets_file`, default DATA_DIR/secrets.yaml; none is fine)."""
        configured = self.config.run.secrets_file
        return Secrets.load(Path(configured) if configured else self.data_dir / "secrets.yaml")

    def live_status(self, actor: User) -> ServiceStatus:
        """What `kuzet run` last reported about every live camera."""
        self._require(actor, "admin", "operator", "reviewer", "auditor", action="view camera status")
        return read_status(self.data_dir)

    @cached_property
    def _metrics_token(self) -> str | None:
        ref = self.config.run.metrics_token
        if ref is None:
            return None
        try:
            return self.secrets().resolve(ref, what="run.metrics_token")
        except ConfigError as exc:
            log.error("metrics token unavailable: %s", exc.message)  # never shown to the client
            return None

    def metrics_token_ok(self, token: str) -> bool:
        """Whether `token` is the configured Prometheus bearer token (none configured or resolvable: never)."""
        expected = self._metrics_token
        return bool(token) and expected is not None and hmac.compare_digest(expected.encode(), token.encode())

    def alert_feed(self, after: int) -> list[dict[str, object]]:
        """Alerts newer than id `after`, for live updates (no names: the review page shows those)."""
        with self.db.read() as s:
            rows = s.scalars(select(AlertRow).where(AlertRow.id > after).order_by(AlertRow.id).limit(100))
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

    def overview(self, actor: User) -> dict[str, object]:
        """Counts for the dashboard's first page."""
        self._require(actor, *ROLES, action="view the overview")
        with self.db.read() as s:
            alerts = dict(s.execute(select(AlertRow.status, func.count()).group_by(AlertRow.status)).all())
            events = int(s.scalar(select(func.count()).select_from(EventRow)) or 0)
            ledger = AuditLedger(s)
            cp = ledger.latest_checkpoint()
            size = ledger.size()
        return {
            "alerts": {str(k): int(v) for k, v in alerts.items()},
            "events": events,
            "ledger_entries": size,
            "checkpoint": None
            if cp is None
            else {"id": cp.checkpoint_id, "tree_size": cp.tree_size, "root": cp.root_hash},
        }

    def camera_source(self, actor: User, name: str) -> str:
        """Where a camera's pictures come from: its configured source, else the source of its last analysis."""
        self._require(actor, "admin", "operator", "reviewer", "auditor", action="view cameras")
        for cam in self.config.cameras:
            if cam.name == name and cam.source:
                return cam.source
        from kuzet.store.models import AnalysisRunRow

        with self.db.read() as s:
            source = s.scalar(
                select(AnalysisRunRow.source)
                .where(AnalysisRunRow.camera == name)
                .order_by(AnalysisRunRow.id.desc())
                .limit(1)
            )
        if not source:
            raise NotFoundError(
                f"camera {name!r} has no source to show", hint="configure it or analyse a video with it"
            )
        return source

    def camera_replay(self, actor: User, name: str, *, fps: float = 5.0, max_frames: int = 3000) -> Iterator[bytes]:
        """JPEG frames of a camera's stream (or its last analysed video) with detections drawn; audited.

        Every face and plate is pixelated: the picture an operator watches never shows a stranger's face.
        """
        source = self.camera_source(actor, name)
        frames = open_source(source, fps=fps, config=self.config.ingest)  # fails here, before any frame is sent
        with self._tx() as (_, ledger):
            self._audit(ledger, actor, "camera.view", object=f"camera:{name}", details={"fps": fps})
        return self._overlay_frames(name, frames, max_frames)

    def _overlay_frames(self, name: str, source: FrameSource, max_frames: int) -> Iterator[bytes]:
        plates = np.zeros((0, 4), np.float32)
        with source as frames:
            for i, frame in enumerate(frames):
                if i >= max_frames:
                    return
                image = frame.image.copy()
                h, w = image.shape[:2]
                faces = self.video_redactor.faces.detect(frame.image).boxes
                if i % 10 == 0:
                    plates = self.plate_detector.detect(frame.image).boxes
                obscure(image, expand(faces, self.config.redaction.expand, w, h))
                obscure(image, expand(plates, 0.1, w, h))
                for box, colour in [(b, (46, 204, 113)) for b in faces] + [(b, (52, 152, 219)) for b in plates]:
                    x1, y1, x2, y2 = (int(v) for v in box)
                    cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
                cv2.putText(
                    image,
                    f"{name}  t={frame.pts:.1f}s  faces {len(faces)}",
                    (8, 22),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.6,
                    (255, 255, 255),
                    2,
                )
                yield encode_jpeg(image, quality=80)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """A candidate alert as stored (what integrations may say about it: no name until people confirm it)."""

    id: int
    score: float
    start: float
    end: float
    required_reviews: int


@dataclass(frozen=True, slots=True)
class Committed:
    """What one commit of an analysis session stored."""

    run_id: int
    events: list[Event]
    alerts: list[StoredAlert]
    passages: list[Passage]
    violations: list[StoredViolation]
    spans: list[tuple[float, float]]
    """Stream-time spans (seconds) of everything stored: what event-triggered recording keeps."""


class AnalysisSession:
    """One camera's analytics over one source: frames in, decisions collected, stored by `commit`.

    `Kuzet.analyze` commits once at the end (all or nothing); a live camera worker commits whenever something was
    decided, so a crash loses at most the decisions of the moment. Every commit is one database transaction with
    its audit entries and a signed checkpoint.
    """

    def __init__(self, svc: Kuzet, actor: User, *, camera: str, source: str, live: bool = False) -> None:
        self.svc = svc
        self.actor = actor
        self.camera = camera
        self.source = source
        self.live = live
        self.started = svc.now()
        self.camera_config = cam = svc.camera_config(camera)
        self.traffic: TrafficAnalyzer | None = None
        if "traffic" in cam.analytics:
            self.traffic = TrafficAnalyzer(
                build_object_detector(cam.traffic.object_detector),
                cam.traffic,
                plate_reader=svc._read_vehicle_plate(plate_formats(cam.traffic.plate_formats)),
            )
        self.faces: FaceAnalyzer | None = None
        self.gallery_people = 0
        if "faces" in cam.analytics:  # a traffic-only camera loads no face models and no gallery
            gallery = svc._load_gallery(camera)
            self.gallery_people = len(gallery.people)
            self.faces = FaceAnalyzer(
                detector=svc.face_detector,
                embedder=svc.face_embedder,
                gallery=gallery,
                people=gallery.people,
                config=svc.config,
            )
        self.frames = 0
        self.expired_hits = 0
        self.withdrawn_hits = 0
        self.run_id: int | None = None
        self._written: list[str] = []  # files of decisions not yet committed
        self._events: list[NewEvent] = []
        self._alerts: list[NewAlert] = []
        self._passages: list[Passage] = []
        self._evidence: list[tuple[Violation, str, str]] = []

    def reload_gallery(self) -> None:
        """Load the gallery again (a live camera picks up enrolments, approvals and expiries while it runs)."""
        if self.faces is not None:
            gallery = self.svc._load_gallery(self.camera)
            self.faces.gallery, self.faces.people = gallery, gallery.people
            self.gallery_people = len(gallery.people)

    @property
    def stats(self) -> FaceStats:
        """Face counts so far (frames only, on a traffic-only camera)."""
        return self.faces.stats if self.faces is not None else FaceStats(frames=self.frames)

    @property
    def pending(self) -> bool:
        """Whether decisions wait to be committed."""
        return bool(self._events or self._alerts or self._passages or self._evidence)

    def process(self, frame: Frame) -> None:
        """Analyse one frame."""
        self.frames += 1
        if self.faces is not None:
            self._keep(self.faces.process(frame))
        if self.traffic is not None:
            self.traffic.process(frame)
            self._collect_traffic()

    def finish(self) -> None:
        """End of the source: decide every open track."""
        if self.faces is not None:
            self._keep(self.faces.finish())
        if self.traffic is not None:
            self.traffic.finish()
            self._collect_traffic()

    def _keep(self, decisions: list[TrackDecision]) -> None:
        svc = self.svc
        for d in decisions:
            if d.identity is None:
                continue  # unknown faces are counted by the analyzer, never stored
            if d.identity.kind == "watchlist":
                if not svc._entry_active(d.identity.person_id):
                    self.expired_hits += 1  # expired or withdrawn since the gallery was loaded: no alert
                    continue
                stored = [svc._redacted_snapshot(shot) for shot in d.track.shots]
                paths = [r for r, _ in stored]
                originals = [o for _, o in stored]
                self._written.extend(paths + originals)
                category = svc._entry_category(d.identity.person_id)
                threshold = d.identity.threshold
                self._alerts.append(
                    NewAlert(
                        entry_id=d.identity.person_id,
                        score=round(d.score, 4),
                        threshold=float(threshold if threshold is not None else svc.config.recognition.threshold),
                        start=round(d.track.start, 3),
                        end=round(d.track.end, 3),
                        track_id=d.track.track_id,
                        snapshots=paths,
                        originals=originals,
                        required_reviews=category.required_reviews if category else 2,
                    )
                )
                continue
            if not svc._person_active(d.identity.person_id, self.camera):
                self.withdrawn_hits += 1  # rejected, expired or rescoped since the gallery was loaded: unknown
                continue
            rel, original = svc._redacted_snapshot(d.track.shots[0])
            self._written.extend([rel, original])
            self._events.append(
                NewEvent(
                    person_id=d.identity.person_id,
                    identity=d.identity.name,
                    score=round(d.score, 4),
                    start=round(d.track.start, 3),
                    end=round(d.track.end, 3),
                    track_id=d.track.track_id,
                    snapshot=rel,
                    original=original,
                )
            )

    def _collect_traffic(self) -> None:
        """Move what the traffic analyzer finished into this session (so a long live run holds no history)."""
        traffic = self.traffic
        if traffic is None:
            return
        if traffic.plates:
            self._alerts.extend(self.svc._plate_hits(traffic.plates, self._written))
            traffic.plates.clear()
        self._passages.extend(traffic.passages)
        traffic.passages.clear()
        for v in traffic.violations:
            rel_dir, digest, files = write_evidence(
                v,
                media_root=self.svc.media.root,
                camera=self.camera,
                source=self.source,
                recorded_at=self.svc.now(),
                calibration=self.camera_config.traffic.calibration,
                redactor=self.svc.redactor,
            )
            self._written.extend(files)
            self._evidence.append((v, rel_dir, digest))
        traffic.violations.clear()

    def discard(self) -> None:
        """Remove the files of uncommitted decisions (the analysis failed)."""
        for rel in self._written:
            self.svc.media.delete(rel)
        self._written.clear()

    def commit(self) -> Committed:
        """Store every pending decision and the run's counters in one audited transaction."""
        svc, actor, camera = self.svc, self.actor, self.camera
        stats = self.stats
        run = RunRecord(
            camera=camera,
            source=self.source,
            started_at=self.started,
            frames=stats.frames,
            faces=stats.faces,
            tracks=stats.tracks,
            matched_tracks=stats.matched_tracks,
            unknown_tracks=stats.unknown_tracks,
        )
        new_events, new_alerts, passages, evidence = self._events, self._alerts, self._passages, self._evidence
        first = self.run_id is None
        with svc._tx() as (s, ledger):
            run_id, events = EventRepository(s).save_run(run, new_events, now=svc.now(), run_id=self.run_id)
            alerts = AlertRepository(s)
            alert_ids = [
                alerts.add(a, run_id=run_id, camera=camera, source=self.source, now=svc.now()) for a in new_alerts
            ]
            if first or self.pending:
                # A live run's later commits that only refresh its counters are not actions on anyone's data.
                svc._audit(
                    ledger,
                    actor,
                    "analysis.live" if self.live else "analysis.run",
                    object=f"run:{run_id}",
                    details={
                        "camera": camera,
                        "source": self.source,
                        "frames": stats.frames,
                        "tracks": stats.tracks,
                        "events": len(events),
                        "alerts": len(alert_ids),
                        "unknown_tracks": stats.unknown_tracks,
                        "gallery_people": self.gallery_people,
                    },
                )
            for alert_id, a in zip(alert_ids, new_alerts, strict=True):
                svc._audit(
                    ledger,
                    actor,
                    "alert.created",
                    object=f"alert:{alert_id}",
                    details={"entry": a.entry_id, "score": a.score, "threshold": a.threshold, "camera": camera},
                )
            violations: list[StoredViolation] = []
            if self.traffic is not None and (first or passages or evidence):
                violations = svc._store_traffic(
                    s, ledger, actor, run_id, camera, passages, evidence, self.traffic.stats.plates_read
                )
        self.run_id = run_id
        self._events, self._alerts, self._passages, self._evidence = [], [], [], []
        self._written.clear()
        spans = [(e.start, e.end) for e in events] + [(a.start, a.end) for a in new_alerts]
        spans += [(p.pts, p.pts) for p in passages] + [(v.at, v.at) for v in violations]
        return Committed(
            run_id=run_id,
            events=events,
            alerts=[
                StoredAlert(i, a.score, a.start, a.end, a.required_reviews)
                for i, a in zip(alert_ids, new_alerts, strict=True)
            ],
            passages=passages,
            violations=violations,
            spans=spans,
        )


def _traffic_dict(row: PassageRow | ViolationRow) -> dict[str, object]:
    """A stored passage or violation as JSON."""
    common: dict[str, object] = {
        "id": row.id,
        "run_id": row.run_id,
        "camera": row.camera,
        "track_id": row.track_id,
        "time_s": row.at,
        "plate": row.plate,
        "created_at": row.created_at,
    }
    if isinstance(row, PassageRow):
        return common | {
            "line": row.line,
            "direction": row.direction,
            "object": row.label,
            "speed_kmh": row.speed_kmh,
            "speed_uncertainty_kmh": row.speed_err_kmh,
        }
    return common | {
        "rule": row.kind,
        "where": row.place,
        "measurements": json.loads(row.measurements),
        "evidence": row.evidence,
        "evidence_sha256": row.evidence_sha256,
    }

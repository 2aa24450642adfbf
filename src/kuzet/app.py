"""Deprecated: the old `Kuzet` facade, kept for one release as a thin shim over `kuzet.services`.

Nothing in kuzet uses it any more (a test checks that): the CLI, the API, the dashboard and `kuzet run` take a
`Services` from `kuzet.services.container.build_services`. Scripts written against `Kuzet` keep working until
the next release; move them to the services (each method below names the one it calls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

from kuzet.audit.checkpoint_log import CheckpointLog
from kuzet.audit.ledger import AuditEntry, Checkpoint, Details, KeyRotation
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.verify import TrustedCheckpoint, VerifyReport
from kuzet.audit.witness import WitnessPublisher
from kuzet.config.models import CameraConfig, KuzetConfig
from kuzet.config.paths import ENV_HOME, resolve_data_dir
from kuzet.config.secrets import Secrets
from kuzet.core.types import Event, User
from kuzet.detect.face import FaceDetector
from kuzet.detect.plate.ppocr import PpOcrPlateDetector
from kuzet.detect.plate.reader import PlateReader
from kuzet.governance import watchlists as wl
from kuzet.governance.policy import Policy
from kuzet.governance.redaction import Redactor
from kuzet.governance.report import TransparencyReport
from kuzet.governance.retention import PurgeReport
from kuzet.governance.review import PENDING, Alert
from kuzet.recognize import FaceEmbedder
from kuzet.recognize.gallery import Gallery
from kuzet.services import views
from kuzet.services.analysis import AnalysisResult, TrafficResult
from kuzet.services.audit import ConsistencyProof, InclusionProof
from kuzet.services.container import Services, build_services
from kuzet.services.gallery import EnrolResult
from kuzet.services.media import Recording
from kuzet.services.session import AnalysisSession, Committed, StoredAlert
from kuzet.store.crypto import DataCipher
from kuzet.store.db import Database
from kuzet.store.media import MediaStore
from kuzet.store.repositories.gallery import PersonSummary
from kuzet.store.repositories.traffic import StoredViolation
from kuzet.store.status import ServiceStatus

__all__ = [
    "ENV_HOME",
    "AnalysisResult",
    "AnalysisSession",
    "Committed",
    "ConsistencyProof",
    "EnrolResult",
    "InclusionProof",
    "Kuzet",
    "Recording",
    "StoredAlert",
    "StoredViolation",
    "TrafficResult",
    "resolve_data_dir",
]


class Kuzet:
    """Deprecated: every method forwards to one service of `self.services`."""

    def __init__(
        self,
        data_dir: Path,
        config: KuzetConfig | None = None,
        *,
        policy: Policy | None = None,
        origin: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.services: Services = build_services(data_dir, config, policy=policy, origin=origin, clock=clock)
        self.ctx = self.services.ctx

    # -- what the context holds ------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The data directory."""
        return self.ctx.data_dir

    @property
    def config(self) -> KuzetConfig:
        """The configuration."""
        return self.ctx.config

    @property
    def policy(self) -> Policy:
        """The watchlist policy."""
        return self.ctx.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self.ctx.policy = policy

    @property
    def db(self) -> Database:
        """The database."""
        return self.ctx.db

    @property
    def media(self) -> MediaStore:
        """The media folder."""
        return self.ctx.media

    @property
    def checkpoint_log(self) -> CheckpointLog:
        """The outside copy of the checkpoints."""
        return self.ctx.checkpoint_log

    @property
    def cipher(self) -> DataCipher:
        """The data key ring."""
        return self.ctx.cipher

    @property
    def signer(self) -> LedgerSigner:
        """The checkpoint signing key."""
        return self.ctx.signer

    @property
    def witnesses(self) -> WitnessPublisher:
        """The checkpoint witnesses."""
        return self.ctx.witnesses

    @property
    def redactor(self) -> Redactor:
        """The redaction of stored media."""
        return self.ctx.models.redactor

    @property
    def video_redactor(self) -> Redactor:
        """The redaction tuned for video."""
        return self.ctx.models.video_redactor

    @property
    def plate_detector(self) -> PpOcrPlateDetector:
        """The plate-shaped text detector (redaction)."""
        return self.ctx.models.plate_detector

    @property
    def plate_reader(self) -> PlateReader:
        """The plate reader."""
        return self.ctx.models.plate_reader

    @property
    def face_detector(self) -> FaceDetector:
        """The face detector (recognition's)."""
        return self.ctx.models.face_detector

    @face_detector.setter
    def face_detector(self, detector: FaceDetector) -> None:
        self.ctx.models.__dict__["face_detector"] = detector

    @property
    def face_embedder(self) -> FaceEmbedder:
        """The face embedder."""
        return self.ctx.models.face_embedder

    @face_embedder.setter
    def face_embedder(self, embedder: FaceEmbedder) -> None:
        self.ctx.models.__dict__["face_embedder"] = embedder

    @property
    def now(self) -> Callable[[], datetime]:
        """The clock (assign a callable to set it)."""
        return self.ctx.clock.now

    @now.setter
    def now(self, clock: Callable[[], datetime]) -> None:
        self.ctx.clock.set(clock)

    def secrets(self) -> Secrets:
        """`ctx.secrets()`."""
        return self.ctx.secrets()

    def camera_config(self, camera: str) -> CameraConfig:
        """`ctx.camera_config()`."""
        return self.ctx.camera_config(camera)

    def close(self) -> None:
        """`services.close()`."""
        self.services.close()

    # -- users -----------------------------------------------------------------------------------------------

    def init_admin(self, name: str, password: str) -> User:
        """`users.init_admin`."""
        return self.services.users.init_admin(name, password)

    def add_user(self, actor: User, name: str, password: str, roles: list[str]) -> User:
        """`users.add`."""
        return self.services.users.add(actor, name, password, roles)

    def users(self, actor: User) -> list[User]:
        """`users.list`."""
        return self.services.users.list(actor)

    def login(self, name: str, password: str, *, address: str = "local") -> tuple[User, str]:
        """`users.login`."""
        return self.services.users.login(name, password, address=address)

    def authenticate(self, token: str) -> User:
        """`users.authenticate`."""
        return self.services.users.authenticate(token)

    def logout(self, token: str) -> None:
        """`users.logout`."""
        self.services.users.logout(token)

    # -- enrolment and watchlists ------------------------------------------------------------------------------

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
        """`gallery.enroll`."""
        return self.services.gallery.enroll(actor, name, photos, consent=consent, scope=scope, expires=expires)

    def people_approve(self, actor: User, person_id: int, *, reason: str = "") -> None:
        """`gallery.approve`."""
        self.services.gallery.approve(actor, person_id, reason=reason)

    def people_reject(self, actor: User, person_id: int, *, reason: str) -> None:
        """`gallery.reject`."""
        self.services.gallery.reject(actor, person_id, reason=reason)

    def expire_enrolments(self) -> list[int]:
        """`gallery.expire`."""
        return self.services.gallery.expire()

    def people(self, actor: User, *, status: str | None = None) -> list[PersonSummary]:
        """`gallery.people`."""
        return self.services.gallery.people(actor, status=status)

    def _load_gallery(self, camera: str | None = None) -> Gallery:
        """`gallery.load`."""
        return self.services.gallery.load(camera)

    def expire_watchlists(self) -> list[int]:
        """`watchlists.expire`."""
        return self.services.watchlists.expire()

    def watchlist_request(
        self, actor: User, req: wl.WatchlistRequest, photo: Path | None = None, *, plate: str | None = None
    ) -> int:
        """`watchlists.request`."""
        return self.services.watchlists.request(actor, req, photo, plate=plate)

    def watchlist_approve(self, actor: User, entry_id: int, *, reason: str) -> None:
        """`watchlists.approve`."""
        self.services.watchlists.approve(actor, entry_id, reason=reason)

    def watchlist_reject(self, actor: User, entry_id: int, *, reason: str) -> None:
        """`watchlists.reject`."""
        self.services.watchlists.reject(actor, entry_id, reason=reason)

    def watchlist_show(self, actor: User, *, status: str | None = None) -> list[wl.WatchlistEntry]:
        """`watchlists.show`."""
        return self.services.watchlists.show(actor, status=status)

    # -- analysis, records, review -------------------------------------------------------------------------

    def analyze(
        self,
        actor: User,
        source: str,
        *,
        camera: str = "default",
        fps: float | None = None,
        on_start: Callable[[int | None], None] | None = None,
        on_frame: Callable[..., None] | None = None,
    ) -> AnalysisResult:
        """`analysis.analyze`."""
        return self.services.analysis.analyze(
            actor, source, camera=camera, fps=fps, on_start=on_start, on_frame=on_frame
        )

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
        """`records.events`."""
        return self.services.records.events(
            actor,
            camera=camera,
            identity=identity,
            limit=limit,
            offset=offset,
            since=since,
            until=until,
            justification=justification,
        )

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
        """`records.traffic`."""
        return self.services.records.traffic(actor, kind, camera=camera, plate=plate, limit=limit, offset=offset)

    def event_dict(self, event: Event) -> dict[str, object]:
        """`views.event`."""
        return views.event(event, self.ctx.media)

    def review_list(self, actor: User, *, status: str | None = PENDING) -> list[Alert]:
        """`review.list`."""
        return self.services.review.list(actor, status=status)

    def review(self, actor: User, alert_id: int, decision: str, *, reason: str, wrong_match: bool = False) -> str:
        """`review.decide`."""
        return self.services.review.decide(actor, alert_id, decision, reason=reason, wrong_match=wrong_match)

    # -- the ledger ---------------------------------------------------------------------------------------------

    def audit_verify(self, actor: User | None, *, trusted: list[TrustedCheckpoint] | None = None) -> VerifyReport:
        """`audit.verify`."""
        return self.services.audit.verify(actor, trusted=trusted)

    def audit_log(
        self, actor: User, *, start: int = 1, limit: int = 1000, action: str | None = None
    ) -> list[AuditEntry]:
        """`audit.log`."""
        return self.services.audit.log(actor, start=start, limit=limit, action=action)

    def audit_checkpoint(self, actor: User) -> Checkpoint:
        """`audit.checkpoint`."""
        return self.services.audit.checkpoint(actor)

    def audit_latest_checkpoint(self, actor: User) -> Checkpoint:
        """`audit.latest`."""
        return self.services.audit.latest(actor)

    def audit_consistency_sizes(self, actor: User, first: int, second: int) -> list[str]:
        """`audit.consistency_sizes`."""
        return self.services.audit.consistency_sizes(actor, first, second)

    def audit_key_rotations(self, actor: User) -> list[KeyRotation]:
        """`audit.key_rotations`."""
        return self.services.audit.key_rotations(actor)

    def audit_rotate_key(self, actor: User) -> str:
        """`audit.rotate_key`."""
        return self.services.audit.rotate_key(actor)

    def audit_prove(self, actor: User, seq: int) -> InclusionProof:
        """`audit.prove`."""
        return self.services.audit.prove(actor, seq)

    def audit_consistency(self, actor: User, old_id: int, new_id: int) -> ConsistencyProof:
        """`audit.consistency`."""
        return self.services.audit.consistency(actor, old_id, new_id)

    def checkpoints(self, actor: User) -> list[Checkpoint]:
        """`audit.checkpoints`."""
        return self.services.audit.checkpoints(actor)

    # -- media, holds, retention, subjects, keys, reports -----------------------------------------------------

    def access_grant(self, actor: User, name: str, *, hours: float, justification: str) -> datetime:
        """`media.grant`."""
        return self.services.media.grant(actor, name, hours=hours, justification=justification)

    def media_export(
        self, actor: User, kind: str, object_id: int, *, unredacted: bool, justification: str
    ) -> list[bytes]:
        """`media.export`."""
        return self.services.media.export(actor, kind, object_id, unredacted=unredacted, justification=justification)

    def recordings(self, actor: User, *, camera: str | None = None) -> list[Recording]:
        """`media.recordings`."""
        return self.services.media.recordings(actor, camera=camera)

    def recording_export(self, actor: User, rel: str, out: Path, *, unredacted: bool, justification: str) -> None:
        """`media.export_recording`."""
        self.services.media.export_recording(actor, rel, out, unredacted=unredacted, justification=justification)

    def hold_add(self, actor: User, case: str, object_type: str, object_id: int, *, reason: str) -> int:
        """`retention.hold`."""
        return self.services.retention.hold(actor, case, object_type, object_id, reason=reason)

    def hold_release(self, actor: User, case: str, *, reason: str) -> int:
        """`retention.release`."""
        return self.services.retention.release(actor, case, reason=reason)

    def holds(self, actor: User) -> list[dict[str, object]]:
        """`retention.holds`, as JSON."""
        return [views.hold(h) for h in self.services.retention.holds(actor)]

    def retention_run(self, actor: User | None) -> PurgeReport:
        """`retention.run`."""
        return self.services.retention.run(actor)

    def maybe_purge(self) -> PurgeReport | None:
        """`retention.maybe_purge`."""
        return self.services.retention.maybe_purge()

    def subject_search(self, actor: User, photo: Path, *, justification: str) -> dict[str, object]:
        """`subjects.search`."""
        return self.services.subjects.search(actor, photo, justification=justification)

    def subject_erase(self, actor: User, photo: Path, *, justification: str) -> dict[str, object]:
        """`subjects.erase`."""
        return self.services.subjects.erase(actor, photo, justification=justification)

    def keys_rotate(self, actor: User, *, grace_s: float = 2.0) -> str:
        """`keys.rotate`."""
        return self.services.keys.rotate(actor, grace_s=grace_s)

    def transparency_report(self, actor: User, start: date, end: date) -> TransparencyReport:
        """`reports.transparency`."""
        return self.services.reports.transparency(actor, start, end)

    # -- cameras and the dashboard -----------------------------------------------------------------------------

    def cameras(self, actor: User) -> list[dict[str, object]]:
        """`cameras.overview`."""
        return self.services.cameras.overview(actor)

    def check_camera_purposes(self, actor: User, cameras: list[CameraConfig]) -> None:
        """`cameras.check_purposes`."""
        self.services.cameras.check_purposes(actor, cameras)

    def record_service_event(self, actor: User, action: str, *, details: Details) -> None:
        """`cameras.record_service_event`."""
        self.services.cameras.record_service_event(actor, action, details=details)

    def live_status(self, actor: User) -> ServiceStatus:
        """`cameras.live_status`."""
        return self.services.cameras.live_status(actor)

    def metrics_token_ok(self, token: str) -> bool:
        """`cameras.metrics_token_ok`."""
        return self.services.cameras.metrics_token_ok(token)

    def camera_source(self, actor: User, name: str) -> str:
        """`cameras.source`."""
        return self.services.cameras.source(actor, name)

    def camera_replay(self, actor: User, name: str, *, fps: float = 5.0, max_frames: int = 3000) -> Iterator[bytes]:
        """`cameras.replay`."""
        return self.services.cameras.replay(actor, name, fps=fps, max_frames=max_frames)

    def alert_feed(self, after: int) -> list[dict[str, object]]:
        """Alerts newer than id `after` (no names): the dashboard's feed, unchecked as before."""
        with self.services.uow.read() as r:
            return r.alerts.feed(after)

    def overview(self, actor: User) -> dict[str, object]:
        """`dashboard.overview`."""
        return self.services.dashboard.overview(actor)

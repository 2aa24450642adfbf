"""What every service shares over one data directory: config, clock, database, media, keys, models, witnesses."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from kuzet.audit.checkpoint_log import CheckpointLog
from kuzet.audit.ledger import AuditLedger
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.witness import WitnessPublisher, build_witness, check_outside
from kuzet.config.models import CameraConfig, KuzetConfig
from kuzet.config.secrets import Secrets, database_url
from kuzet.core.errors import ConfigError, StoreError
from kuzet.detect.face import FaceDetector, build_face_detector
from kuzet.detect.plate.ppocr import PpOcrPlateDetector
from kuzet.detect.plate.reader import PlateReader
from kuzet.governance.calibration import CALIBRATION_FILE
from kuzet.governance.policy import Policy, load_policy
from kuzet.governance.redaction import Redactor, production_redactor
from kuzet.recognize import FaceAligner, FaceEmbedder, build_face_aligner, build_face_embedder
from kuzet.recognize.fusion import ScoreFusion, load_fusion
from kuzet.store.crypto import DataCipher
from kuzet.store.db import Database
from kuzet.store.files import private_dir, tighten
from kuzet.store.media import MediaStore
from kuzet.store.repositories.gallery import GalleryRepository
from kuzet.store.repositories.watchlists import WatchlistRepository

Now = Callable[[], datetime]


class Clock:
    """The one clock: every service and repository takes the time from here (tests and replays set it)."""

    def __init__(self, now: Now | None = None) -> None:
        self._now: Now = now or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        """The current time (timezone-aware UTC)."""
        return self._now()

    def set(self, now: Now) -> None:
        """Use another source of time from now on."""
        self._now = now


class Models:
    """The models the services use, each loaded on first use (a traffic-only worker loads no face model)."""

    def __init__(self, config: KuzetConfig) -> None:
        self.config = config

    @cached_property
    def face_detector(self) -> FaceDetector:
        """The configured face detector (recognition's)."""
        return build_face_detector(self.config.face_detector)

    @cached_property
    def face_embedder(self) -> FaceEmbedder:
        """The configured face embedder."""
        return build_face_embedder(self.config.face_embedder)

    @cached_property
    def face_aligner(self) -> FaceAligner:
        """The alignment the embedder's config asks for (`face_embedder.alignment`)."""
        return build_face_aligner(self.config.face_embedder)

    @cached_property
    def face_fusion(self) -> ScoreFusion | None:
        """The fusion constants when a second face model is configured (`face_fusion`), checked against both models."""
        cfg = self.config.face_fusion
        if cfg is None:
            return None
        fusion = load_fusion(Path(cfg.constants).expanduser() if cfg.constants else None)
        wanted = (self.config.face_embedder.type, cfg.embedder.type)
        if fusion.model_names != wanted:
            raise ConfigError(
                f"the fusion constants fuse {' and '.join(fusion.model_names)}, but the config asks for "
                f"{' and '.join(wanted)}",
                hint="refit them for these models with python bench/compare_face_models.py, or change the models",
            )
        return fusion

    @cached_property
    def face_extra(self) -> list[tuple[FaceAligner, FaceEmbedder]]:
        """The fused models after the first, each with its own alignment (none without `face_fusion`)."""
        cfg = self.config.face_fusion
        if cfg is None:
            return []
        _ = self.face_fusion  # refuse mismatched constants before loading a model
        return [(build_face_aligner(cfg.embedder), build_face_embedder(cfg.embedder))]

    @property
    def face_models(self) -> list[tuple[FaceAligner, FaceEmbedder]]:
        """Every face model templates are made with: the embedder, then the fused ones."""
        return [(self.face_aligner, self.face_embedder), *self.face_extra]

    @cached_property
    def plate_detector(self) -> PpOcrPlateDetector:
        """Plate-shaped text detector used for redaction."""
        return PpOcrPlateDetector(max_side=960)

    @cached_property
    def plate_reader(self) -> PlateReader:
        """Plate candidates and their text (PP-OCR detection and recognition)."""
        return PlateReader(max_side=640)

    @cached_property
    def redactor(self) -> Redactor:
        """Face and plate redaction for stored media: recall-first face finding (`redaction` in the config)."""
        return production_redactor(self.config.redaction, plates=self.plate_detector)

    @cached_property
    def video_redactor(self) -> Redactor:
        """The same redaction, tuned to keep pace with video (camera replays, recording exports)."""
        return production_redactor(self.config.redaction, video=True, plates=self.plate_detector)


class ServiceContext:
    """One data directory opened: everything kuzet keeps lives under `data_dir`, and two never share anything.

    `kuzet.db` (SQLite, WAL), `media/`, `keys/` (the ledger's signing key and the data key ring),
    `audit/checkpoints.jsonl` (the outside copy of every signed checkpoint), and optional `config.yaml`,
    `policy.yaml` and `secrets.yaml`.
    """

    def __init__(
        self,
        data_dir: Path,
        config: KuzetConfig | None = None,
        *,
        policy: Policy | None = None,
        origin: str | None = None,
        clock: Now | None = None,
        prepare: bool = True,
    ) -> None:
        """Open `data_dir`; with `prepare` (the default) also migrate the database and finish a key rotation.

        A live camera worker passes `prepare=False`: the process that started it has prepared the directory.
        """
        self.data_dir = data_dir
        self._closed = False
        self.config = config or KuzetConfig()
        self.origin = origin or f"cli@{socket.gethostname()}"
        self.clock = Clock(clock)
        check_outside(self.config.audit.witnesses, data_dir)
        media_dir = Path(self.config.media_dir).expanduser() if self.config.media_dir else data_dir / "media"
        try:
            # Owner-only whatever the umask, and tightened if an older kuzet left it readable by others.
            for folder in (data_dir, data_dir / "audit"):
                private_dir(folder)
            for name in ("session.token", "secrets.yaml", "config.yaml", "policy.yaml"):
                tighten(data_dir / name)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {data_dir}: {exc.strerror}",
                hint="choose a writable folder with --data-dir or KUZET_HOME",
            ) from None
        try:
            private_dir(media_dir)
        except OSError as exc:
            raise StoreError(
                f"cannot create the media folder {media_dir}: {exc.strerror}",
                hint="set media_dir in the config to a writable folder (on a cluster, a mount every node shares)",
            ) from None
        store = self.config.database
        secrets = self.secrets() if store.password else Secrets()  # the secrets file is read only when needed
        self.db = Database(database_url(store, secrets, data_dir), store)
        if prepare:
            self.db.migrate()
        self.media = MediaStore(media_dir)
        policy_file = data_dir / "policy.yaml"
        calibration_file = data_dir / CALIBRATION_FILE
        self.policy = policy or load_policy(
            policy_file if policy_file.is_file() else None,
            calibration=calibration_file if calibration_file.is_file() else None,
            matcher=self.config.face_matcher,
        )
        self.policy.check_embedder(self.config.face_matcher)
        self.checkpoint_log = CheckpointLog(data_dir / "audit" / "checkpoints.jsonl")
        self.models = Models(self.config)
        if prepare:
            self._finish_key_rotation()

    def now(self) -> datetime:
        """The clock's time."""
        return self.clock.now()

    @cached_property
    def signer(self) -> LedgerSigner:
        """The ledger's checkpoint signing key (created on first use)."""
        return LedgerSigner.load_or_create(self.data_dir / "keys")

    @cached_property
    def cipher(self) -> DataCipher:
        """The data key ring (templates and unredacted media); created on first use of an empty database only."""
        with self.db.read() as s:
            has_data = GalleryRepository(s).template_count() + WatchlistRepository(s).template_count() > 0
        return DataCipher.load(self.data_dir / "keys", create=not has_data)

    @cached_property
    def witnesses(self) -> WitnessPublisher:
        """Where every committed checkpoint is sent (`audit.witnesses` in the config)."""
        secrets = self.secrets()
        return WitnessPublisher([build_witness(w, secrets) for w in self.config.audit.witnesses])

    def secrets(self) -> Secrets:
        """The secrets file (`run.secrets_file`, default DATA_DIR/secrets.yaml; none is fine)."""
        configured = self.config.run.secrets_file
        return Secrets.load(Path(configured) if configured else self.data_dir / "secrets.yaml")

    def camera_config(self, camera: str) -> CameraConfig:
        """The named camera's settings (a camera not in the config runs face analytics with the defaults)."""
        for cam in self.config.cameras:
            if cam.name == camera:
                return cam
        return CameraConfig.model_construct(name=camera)

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

    def close(self) -> None:
        """Deliver queued checkpoints to the witnesses and release the database (again: nothing)."""
        if self._closed:
            return
        self._closed = True
        if "witnesses" in self.__dict__:
            self.witnesses.close()
        self.db.dispose()

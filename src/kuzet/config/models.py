"""Pydantic models of kuzet's YAML configuration; backends are chosen by `type`.

The sections live in `base`, `vision`, `cameras` and `integrations`; this module holds the top level and names
every model, so `from kuzet.config.models import CameraConfig` keeps working.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from kuzet.config.base import Strict
from kuzet.config.cameras import (
    CAMERA_NAME,
    LOOPBACK,
    SECRET_REF,
    Calibration,
    CameraConfig,
    CountingLine,
    RecordConfig,
    RedLight,
    TrafficConfig,
    Zone,
)
from kuzet.config.integrations import (
    AuditConfig,
    FileWitnessConfig,
    MqttConfig,
    MqttWitnessConfig,
    RunConfig,
    WebhookConfig,
    WebhookWitnessConfig,
    WitnessConfig,
)
from kuzet.config.vision import (
    CenterFaceConfig,
    DecodeConfig,
    DlibHogConfig,
    DlibResNetConfig,
    FaceDetectorConfig,
    FaceEmbedderConfig,
    FaceFusionConfig,
    IngestConfig,
    MotionDetectorConfig,
    MotionGateConfig,
    ObjectDetectorConfig,
    Point,
    RecognitionConfig,
    RedactionConfig,
    SFaceConfig,
    TrackerConfig,
    YoloOnnxConfig,
    YuNetConfig,
)

__all__ = [
    "CAMERA_NAME",
    "LOOPBACK",
    "SECRET_REF",
    "ApiConfig",
    "AuditConfig",
    "Calibration",
    "CameraConfig",
    "CenterFaceConfig",
    "CountingLine",
    "DatabaseConfig",
    "DecodeConfig",
    "DlibHogConfig",
    "DlibResNetConfig",
    "FaceDetectorConfig",
    "FaceEmbedderConfig",
    "FaceFusionConfig",
    "FileWitnessConfig",
    "IngestConfig",
    "KuzetConfig",
    "MotionDetectorConfig",
    "MotionGateConfig",
    "MqttConfig",
    "MqttWitnessConfig",
    "ObjectDetectorConfig",
    "Point",
    "RecognitionConfig",
    "RecordConfig",
    "RedLight",
    "RedactionConfig",
    "RunConfig",
    "SFaceConfig",
    "SignInConfig",
    "TrackerConfig",
    "TrafficConfig",
    "WebhookConfig",
    "WebhookWitnessConfig",
    "WitnessConfig",
    "YoloOnnxConfig",
    "YuNetConfig",
    "Zone",
]


class SignInConfig(Strict):
    """Throttling of failed sign-ins (CLI and web alike), counted in the database so every process shares it."""

    max_failures: int = Field(
        5, ge=1, le=1_000_000, description="Failed attempts per account, and per client address, before a lock."
    )
    window_s: float = Field(900.0, gt=0, description="Failures older than this no longer count (seconds).")
    lock_s: float = Field(900.0, gt=0, description="How long a lock lasts (seconds).")


class ApiConfig(Strict):
    """The REST API and dashboard (`kuzet serve`, `kuzet run --serve`)."""

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed; none by "
        "default, so the peer address is the client's.",
    )
    secure_cookies: bool = Field(
        False, description="Mark session cookies Secure (set it when kuzet is served over HTTPS, e.g. behind a proxy)."
    )
    max_body_mb: int = Field(64, ge=1, le=1024, description="Largest request body accepted (uploads), MiB.")
    read_threads: int = Field(
        4,
        ge=1,
        le=64,
        description="Threads of each server process that run requests' short reads on PostgreSQL (the session "
        "check, listings); more wait their turn. A few keep the ledger's committer thread from waiting for the "
        "interpreter while it holds the write lock.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        import ipaddress

        for v in values:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise ValueError(f"{v!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return values


class DatabaseConfig(Strict):
    """The store: SQLite in the data directory (the default, nothing to install) or a shared PostgreSQL."""

    url: str | None = Field(
        None,
        description="postgresql://USER@HOST:PORT/DATABASE (the password goes in `password`); default: SQLite in "
        "DATA_DIR/kuzet.db. The environment variable KUZET_DATABASE_URL, when set, is used instead (password and all).",
    )
    password: str | None = Field(None, pattern=SECRET_REF, description="`env:NAME` or `secret:NAME`.")
    pool_size: int = Field(10, ge=1, le=500, description="Connections each kuzet process keeps open (PostgreSQL).")
    max_overflow: int = Field(20, ge=0, le=1000, description="Extra connections allowed at peaks (PostgreSQL).")
    statement_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="A statement running longer is cancelled (PostgreSQL)."
    )
    lock_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest wait for the store's write lock before giving up (PostgreSQL; SQLite: for a turn at it).",
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("sqlite", "postgresql", "postgresql+psycopg", "postgres"):
            raise ValueError("the database URL must start with postgresql:// (or sqlite:///PATH)")
        if parts.password is not None:
            raise ValueError("the URL holds a password: remove it and set `password` to env:NAME or secret:NAME")
        return value


class MapConfig(Strict):
    """What the map draws under the cameras; kuzet never fetches map tiles from outside."""

    geojson: str | None = Field(
        None, min_length=1, description="A GeoJSON file of the city (districts, streets) to draw; positions in lat/lon."
    )
    plan: str | None = Field(
        None, min_length=1, description="A site plan image (PNG or JPEG); camera positions are x/y pixels on it."
    )

    @model_validator(mode="after")
    def _one_base(self) -> MapConfig:
        if self.geojson is not None and self.plan is not None:
            raise ValueError("give a GeoJSON city map or a site plan image, not both")
        return self


class KuzetConfig(Strict):
    """Everything kuzet can be configured with; every field has a safe default."""

    face_detector: FaceDetectorConfig = Field(
        default_factory=CenterFaceConfig, description="Face detector backend, chosen by `type`."
    )
    face_embedder: FaceEmbedderConfig = Field(
        default_factory=DlibResNetConfig, description="Face embedder backend, chosen by `type`."
    )
    face_fusion: FaceFusionConfig | None = Field(
        None, description="A second face model whose scores are fused with `face_embedder`'s (off by default)."
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Face tracking.")
    recognition: RecognitionConfig = Field(default_factory=RecognitionConfig, description="Matching rules.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Decoding limits.")
    motion_gate: MotionGateConfig = Field(
        default_factory=MotionGateConfig, description="Run face detection only where something moves."
    )
    redaction: RedactionConfig = Field(default_factory=RedactionConfig, description="Finding faces to hide.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras known by name.")
    run: RunConfig = Field(default_factory=RunConfig, description="`kuzet run`: live cameras and integrations.")
    audit: AuditConfig = Field(default_factory=AuditConfig, description="Witnesses of the audit ledger.")
    api: ApiConfig = Field(default_factory=ApiConfig, description="The REST API and dashboard.")
    sign_in: SignInConfig = Field(default_factory=SignInConfig, description="Throttling of failed sign-ins.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="The store (SQLite or PostgreSQL).")
    map: MapConfig = Field(default_factory=MapConfig, description="The dashboard's map of cameras.")
    media_dir: str | None = Field(
        None,
        min_length=1,
        description="Where snapshots, evidence and recordings go (default DATA_DIR/media); on a cluster, a folder "
        "every node mounts at this same path.",
    )

    @model_validator(mode="after")
    def _two_models(self) -> KuzetConfig:
        if self.face_fusion is not None and self.face_fusion.embedder.type == self.face_embedder.type:
            raise ValueError(
                f"face_fusion.embedder is {self.face_embedder.type}, the same model as face_embedder: fusion needs "
                "a second, different model (e.g. type: sface)"
            )
        return self

    @property
    def face_matcher(self) -> str:
        """The name of what face scores are in: the embedder's, or the fusion's (`fusion(dlib-resnet+sface)`).

        A fusion with constants of its own (`face_fusion.constants`) is named with their SHA-256 too
        (`fusion(dlib-resnet+sface)@1a2b3c4d5e6f`): other constants give other scores, so a calibration measured
        with the shipped ones is refused for them.
        """
        if self.face_fusion is None:
            return self.face_embedder.type
        name = f"fusion({self.face_embedder.type}+{self.face_fusion.embedder.type})"
        if self.face_fusion.constants is None:
            return name
        try:
            digest = hashlib.sha256(Path(self.face_fusion.constants).expanduser().read_bytes()).hexdigest()[:12]
        except OSError:
            digest = "unreadable"  # loading the constants then says why
        return f"{name}@{digest}"

    @property
    def face_embedders(self) -> tuple[DlibResNetConfig | SFaceConfig, ...]:
        """The configs of the face models templates are made with: the embedder, then the fused one."""
        return (self.face_embedder,) if self.face_fusion is None else (self.face_embedder, self.face_fusion.embedder)

    @property
    def face_models(self) -> tuple[str, ...]:
        """The face models templates are made with, by name: the embedder's, then the fused one's."""
        return tuple(c.type for c in self.face_embedders)

    @property
    def match_threshold(self) -> float:
        """The score a track must reach to match an enrolled person, in the matcher's units."""
        return self.recognition.threshold if self.face_fusion is None else self.face_fusion.threshold

    @property
    def match_margin(self) -> float:
        """The lead the best person needs over the second best, in the matcher's units."""
        return self.recognition.margin if self.face_fusion is None else self.face_fusion.margin

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        names = [c.name for c in cameras]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"camera names must be unique; repeated: {', '.join(twice)}")
        return cameras

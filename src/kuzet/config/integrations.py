"""Configuration of `kuzet run` and what it reaches: MQTT, webhooks, the audit witnesses."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from kuzet.config.base import Strict, default_type
from kuzet.config.cameras import (
    LOOPBACK,
    SECRET_REF,
)


def _credentials_need_tls(host: str, *, tls: bool, has_credentials: bool, allow_insecure: bool, what: str) -> None:
    """Refuse sending a user name and password in the clear to another machine."""
    if has_credentials and not tls and host not in LOOPBACK and not allow_insecure:
        raise ValueError(
            f"{what} sends a user name and password to {host} without TLS: set `tls: true` "
            "(or `allow_insecure: true` on a network you trust)"
        )


class MqttConfig(Strict):
    """An MQTT broker that receives events and camera status (JSON payloads under `topic_prefix/`)."""

    host: str = Field(..., min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 with TLS).")
    tls: bool = Field(False, description="Connect with TLS (system certificate store, or `ca_file`).")
    ca_file: str | None = Field(None, description="CA bundle that signed the broker's certificate (TLS).")
    username: str | None = Field(None, pattern=SECRET_REF, description="`env:NAME` or `secret:NAME`.")
    password: str | None = Field(None, pattern=SECRET_REF, description="`env:NAME` or `secret:NAME`.")
    topic_prefix: str = Field("kuzet", pattern=r"^[A-Za-z0-9_\-/]+$", description="First level of every topic.")
    client_id: str = Field("kuzet", min_length=1, max_length=64, description="MQTT client identifier.")
    qos: Literal[0, 1, 2] = Field(1, description="Quality of service of every publication.")
    include_identity: bool = Field(
        True, description="Event payloads name the enrolled person (consented gallery); alerts never name anyone."
    )
    include_plates: bool = Field(False, description="Passage and violation payloads carry the plate text.")
    allow_insecure: bool = Field(
        False, description="Allow a user name and password over plain MQTT to a broker off this machine."
    )

    @model_validator(mode="after")
    def _tls_for_credentials(self) -> MqttConfig:
        _credentials_need_tls(
            self.host,
            tls=self.tls,
            has_credentials=self.username is not None or self.password is not None,
            allow_insecure=self.allow_insecure,
            what="run.mqtt",
        )
        return self


class WebhookConfig(Strict):
    """An HTTP endpoint that receives events as signed JSON POSTs, retried until it answers."""

    url: str = Field(..., pattern=r"^https?://", description="Endpoint URL (https, or http on loopback).")
    secret: str = Field(
        ..., pattern=SECRET_REF, description="HMAC-SHA256 key (`env:NAME` or `secret:NAME`) signing every body."
    )
    kinds: list[Literal["event", "alert", "passage", "violation", "camera"]] = Field(
        default_factory=lambda: list[Literal["event", "alert", "passage", "violation", "camera"]](
            ["event", "alert", "violation"]
        ),
        min_length=1,
        description="What is sent.",
    )
    max_attempts: int = Field(6, ge=1, le=20, description="Attempts per delivery (exponential backoff between).")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Seconds to wait for each attempt.")
    include_identity: bool = Field(True, description="Event payloads name the enrolled person.")
    include_plates: bool = Field(False, description="Passage and violation payloads carry the plate text.")
    allow_insecure: bool = Field(False, description="Allow plain http to a host other than loopback.")

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> WebhookConfig:
        _https_off_loopback(self.url, allow_insecure=self.allow_insecure)
        return self


class RunConfig(Strict):
    """`kuzet run`: live cameras, one worker process each, and where their results go."""

    default_fps: float = Field(10.0, gt=0, le=60, description="Frames analysed per second when a camera sets no fps.")
    queue_size: int = Field(
        4, ge=1, le=256, description="Decoded frames waiting for analysis; when full the oldest is dropped."
    )
    reconnect_initial_s: float = Field(1.0, gt=0, le=60, description="First wait before reconnecting.")
    reconnect_max_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between reconnects.")
    reconnect_jitter: float = Field(
        0.3, ge=0, le=1, description="Each wait is shortened by a random share up to this, so cameras spread out."
    )
    failed_after: int = Field(
        5, ge=1, le=1000, description="Consecutive failed attempts before a camera shows as failed (it keeps trying)."
    )
    auth_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="Attempts a camera may refuse its credentials (401/403) before kuzet stops connecting to it "
        "(`failed: wrong credentials`) until its username/password or their secrets change: cameras lock accounts "
        "after a few failures.",
    )
    stall_timeout_s: float = Field(
        10.0, gt=0, le=600, description="No frame for this long: the stream is stalled and is reopened."
    )
    first_frame_timeout_s: float = Field(
        15.0,
        gt=0,
        le=600,
        description="A new connection may take this long for its first frame (decoding starts at a key frame).",
    )
    hang_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="A worker silent for this long is killed and restarted."
    )
    stats_interval_s: float = Field(10.0, gt=0, le=3600, description="How often run counters are stored.")
    wall_snapshot_s: float = Field(
        2.0,
        ge=0,
        le=600,
        description="How often each live camera leaves a redacted picture (faces and plates pixelated) for the "
        "camera wall while someone watches it (asked for its picture in the last 30 s); 0: never.",
    )
    wall_idle_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="How often while nobody watches (redacting a picture costs as much as analysing several "
        "frames); 0: only while watched. A wall opened shows a picture at most this old, then live ones.",
    )
    gallery_poll_s: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="How often a running camera applies the gallery's changes (approvals, expiries, erasures): "
        "only the changed enrolments and watchlist entries are read.",
    )
    gallery_refresh_s: float = Field(
        3600.0, gt=0, le=86400, description="How often a running camera reloads its whole gallery (a safety net)."
    )
    shared_detector: bool = Field(
        False,
        description="Run CenterFace once for every face camera of this machine, in a detector process of its own: "
        "each camera sends it the frames that need the full pass and it runs every frame waiting as one batched "
        "call (one model instance for many streams, the way to share a GPU). Off: each camera's worker runs its own "
        "(a crash stays in one camera). The local engine only; needs `face_detector.type: centerface`.",
    )
    retention_interval_s: float = Field(3600.0, gt=0, description="How often retention runs while kuzet runs.")
    secrets_file: str | None = Field(
        None, description="YAML file of NAME: value secrets (owner-only permissions); default DATA_DIR/secrets.yaml."
    )
    metrics_token: str | None = Field(
        None, pattern=SECRET_REF, description="Bearer token Prometheus presents at /metrics (`env:` or `secret:`)."
    )
    mqtt: MqttConfig | None = Field(None, description="MQTT broker for events and camera status.")
    webhooks: list[WebhookConfig] = Field(default_factory=list, description="Signed HTTP POSTs of events.")

    @field_validator("webhooks")
    @classmethod
    def _one_entry_per_endpoint(cls, value: list[WebhookConfig]) -> list[WebhookConfig]:
        urls = [w.url for w in value]
        if len(set(urls)) != len(urls):
            # each endpoint keeps its own place in the outbox: two entries would share it
            raise ValueError("a webhook URL is listed twice: give it one entry with every kind it wants")
        return value


def _https_off_loopback(url: str, *, allow_insecure: bool) -> None:
    if urlsplit(url).password is not None:
        raise ValueError("the webhook URL holds a password: authenticate with `secret` (HMAC) instead")
    host = urlsplit(url).hostname or ""
    if url.startswith("http://") and host not in LOOPBACK and not allow_insecure:
        raise ValueError(f"{url} is plain http off this machine: use https (or set allow_insecure: true)")


class FileWitnessConfig(Strict):
    """A file outside the data directory that every signed checkpoint is appended to (JSON lines)."""

    type: Literal["file"] = Field("file", description="Selects a file witness.")
    path: str = Field(
        ...,
        min_length=1,
        description="Absolute path, on another disk or mount than the data directory (e.g. an append-only share).",
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("give an absolute path for the witness file")
        return value


class MqttWitnessConfig(Strict):
    """An MQTT broker that holds the newest signed checkpoint as a retained message."""

    type: Literal["mqtt"] = Field("mqtt", description="Selects an MQTT witness.")
    host: str = Field(..., min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 with TLS).")
    tls: bool = Field(False, description="Connect with TLS.")
    ca_file: str | None = Field(None, description="CA bundle that signed the broker's certificate (TLS).")
    username: str | None = Field(None, pattern=SECRET_REF, description="`env:NAME` or `secret:NAME`.")
    password: str | None = Field(None, pattern=SECRET_REF, description="`env:NAME` or `secret:NAME`.")
    topic: str = Field(
        "kuzet/audit/checkpoint", pattern=r"^[A-Za-z0-9_\-/]+$", description="Retained topic the checkpoint goes to."
    )
    client_id: str = Field("kuzet-witness", min_length=1, max_length=64, description="MQTT client identifier.")
    allow_insecure: bool = Field(False, description="Allow credentials over plain MQTT to another machine.")

    @model_validator(mode="after")
    def _tls_for_credentials(self) -> MqttWitnessConfig:
        _credentials_need_tls(
            self.host,
            tls=self.tls,
            has_credentials=self.username is not None or self.password is not None,
            allow_insecure=self.allow_insecure,
            what="the MQTT witness",
        )
        return self


class WebhookWitnessConfig(Strict):
    """An HTTP endpoint that receives every signed checkpoint as a signed JSON POST."""

    type: Literal["webhook"] = Field("webhook", description="Selects a webhook witness.")
    url: str = Field(..., pattern=r"^https?://", description="Endpoint URL (https, or http on loopback).")
    secret: str = Field(..., pattern=SECRET_REF, description="HMAC-SHA256 key (`env:NAME` or `secret:NAME`).")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Seconds to wait for each attempt.")
    allow_insecure: bool = Field(False, description="Allow plain http to a host other than loopback.")

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> WebhookWitnessConfig:
        _https_off_loopback(self.url, allow_insecure=self.allow_insecure)
        return self


WitnessConfig = Annotated[
    FileWitnessConfig | MqttWitnessConfig | WebhookWitnessConfig, Field(discriminator="type"), default_type("file")
]


class AuditConfig(Strict):
    """The audit ledger's witnesses: copies of every signed checkpoint kept outside the data directory."""

    witnesses: list[WitnessConfig] = Field(
        default_factory=list,
        description="Where each signed checkpoint is also sent (file, mqtt, webhook); see docs/governance.md.",
    )

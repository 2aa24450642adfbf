"""Configuration of cameras: their source, purpose, traffic lines and zones, calibration and recording."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator

from kuzet.config.base import Strict
from kuzet.config.vision import (
    DecodeConfig,
    MotionDetectorConfig,
    ObjectDetectorConfig,
    Point,
)
from kuzet.core.errors import InputError


class CountingLine(Strict):
    """A line objects are counted across, in two directions.

    `in` is crossing to the right-hand side of the line as seen walking from its first point to its second on the
    screen: for a line drawn left to right, `in` is moving down the image.
    """

    name: str = Field(..., min_length=1, max_length=64)
    points: tuple[Point, Point] = Field(..., description="Two image points [[x1, y1], [x2, y2]] in pixels.")


class Zone(Strict):
    """A polygon with a rule: `no-stopping` (dwell limit) or `one-way` (allowed direction of travel)."""

    name: str = Field(..., min_length=1, max_length=64)
    polygon: list[Point] = Field(..., min_length=3, description="Image points in pixels.")
    rule: Literal["none", "no-stopping", "one-way"] = "none"
    max_stop_s: float = Field(10.0, gt=0, description="no-stopping: longest allowed stop, seconds.")
    direction: Point | None = Field(None, description="one-way: allowed direction as an image vector [dx, dy].")


class Calibration(Strict):
    """Four image points and where they lie on the road, in metres: a homography to the ground plane."""

    image: list[Point] = Field(..., min_length=4, max_length=4)
    ground: list[Point] = Field(..., min_length=4, max_length=4)
    pixel_error: float = Field(2.0, ge=0, description="Uncertainty of a tracked point, pixels (for speed errors).")
    scale_error: float = Field(
        0.0, ge=0, lt=1, description="Relative uncertainty of the ground distances themselves (0.05 = 5%)."
    )
    note: str = Field("", description="How the points were measured (printed with every speed).")


class RedLight(Strict):
    """Red-light rule: crossing `stop_line` while the signal is red."""

    stop_line: tuple[Point, Point]
    signal_region: tuple[int, int, int, int] | None = Field(
        None, description="x, y, w, h of the signal head in the image; red is read from its colour."
    )


class TrafficConfig(Strict):
    """What a traffic camera measures."""

    object_detector: ObjectDetectorConfig = Field(default_factory=MotionDetectorConfig)
    lines: list[CountingLine] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    calibration: Calibration | None = None
    red_light: RedLight | None = None
    speed_limit_kmh: float | None = Field(None, gt=0, description="Passages faster than this are violations.")
    plates: bool = Field(True, description="Read plates of tracked vehicles.")
    plate_formats: list[str] = Field(
        default_factory=lambda: ["kz"],
        description="Plate regions: country codes (kz, ru, ua, by, de, pl, ...), eu (all of Europe), us, br.",
    )
    plate_every: int = Field(3, ge=1, description="Read plates on every n-th frame of a track.")
    min_track_frames: int = Field(3, ge=1, description="Shorter tracks are noise.")


CAMERA_NAME = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$"
"""Camera names become folder names (recordings, caches): no path separators and no leading dot (`.`, `..`)."""


def checked_camera_name(name: str) -> str:
    """A camera name given outside the config (`kuzet analyze --camera`), held to the config's rule.

    Raises:
        InputError: It is empty, longer than 64 characters, or has other characters than the config allows
            (control characters reached the public transparency report).
    """
    if len(name) > 64 or not re.fullmatch(CAMERA_NAME, name):
        raise InputError(
            f"invalid camera name {name[:80]!r}",
            hint="use 1-64 letters, digits, '_', '-' and '.' (not first), as the config's camera names",
        )
    return name


SECRET_REF = r"^(env|secret):[A-Za-z_][A-Za-z0-9_.\-]*$"
"""A secret is never written in the config: `env:NAME` reads an environment variable, `secret:NAME` the secrets file."""


class RecordConfig(Strict):
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
    evidence_s: float = Field(
        30.0,
        ge=0.0,
        le=600.0,
        description="With a `record_source`: seconds of the main stream's compressed packets held in memory, so "
        "that a snapshot is cut from the main stream at the moment of its best shot (decoded only then); 0: "
        "snapshots come from the analysis stream.",
    )


class MapPosition(Strict):
    """Where a camera stands: latitude and longitude on the city map, or x and y in pixels on the site plan."""

    lat: float | None = Field(None, ge=-90, le=90, description="Latitude, degrees (WGS 84).")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude, degrees (WGS 84).")
    x: float | None = Field(None, ge=0, description="Pixels from the site plan's left edge.")
    y: float | None = Field(None, ge=0, description="Pixels from the site plan's top edge.")

    @model_validator(mode="after")
    def _one_kind(self) -> MapPosition:
        geo = self.lat is not None or self.lon is not None
        plan = self.x is not None or self.y is not None
        if geo == plan:
            raise ValueError("give either lat and lon (the city map) or x and y (the site plan), not both or neither")
        if geo and (self.lat is None or self.lon is None):
            raise ValueError("give both lat and lon")
        if plan and (self.x is None or self.y is None):
            raise ValueError("give both x and y")
        return self


class CameraConfig(Strict):
    """A named camera and what feeds it."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=CAMERA_NAME,
        description="Camera name: letters, digits, `_`, `-` and `.`, not starting with `.` (it names folders).",
    )
    source: str = Field("", description="File, folder or rtsp:// / http:// URL; may be given on the command line.")
    record_source: str = Field(
        "",
        description="The camera's main (full-resolution) stream, when `source` names its low-resolution sub-stream: "
        "`source` is analysed, `record_source` is recorded (copied, never decoded) and face snapshots are cut from "
        "it at the best shot's moment. Same username, password and rtsp_transport as `source`. Live cameras only.",
    )
    rtsp_transport: Literal["auto", "tcp", "udp", "http"] = Field(
        "auto",
        description="How RTSP reaches the camera: tcp (interleaved in the RTSP connection), udp (separate RTP "
        "ports, for servers that offer nothing else), http (RTSP tunnelled through HTTP, for proxies that pass only "
        "HTTP), or auto: TCP, then UDP when the camera refuses TCP. Only rtsp:// sources use it.",
    )
    clock: Literal["auto", "stream", "wall"] = Field(
        "auto",
        description="Where frame times come from: stream (the camera's own timestamps), wall (this machine's clock "
        "as frames arrive, for sources whose clock cannot be trusted), or auto: wall for MJPEG over HTTP and HLS, "
        "stream for everything else. Sampling at `fps` and event times follow it.",
    )
    decode: DecodeConfig | None = Field(
        None,
        description="How this camera's stream is decoded (hwaccel, threads, thread_type, skip_nonref); default: "
        "`ingest.decode`.",
    )
    position: MapPosition | None = Field(None, description="Where the camera stands, for the map.")
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

    @field_validator("source", "record_source")
    @classmethod
    def _no_password_in_url(cls, value: str) -> str:
        if "://" in value and urlsplit(value).password is not None:
            raise ValueError(
                "the URL holds a password: remove it and set `username`/`password` to env:NAME or secret:NAME"
            )
        return value


LOOPBACK = ("127.0.0.1", "localhost", "::1")

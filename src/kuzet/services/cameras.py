"""Cameras: what is configured and what was analysed, live status, metrics access, and the redacted picture."""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from kuzet.audit.ledger import Details
from kuzet.config.models import CameraConfig
from kuzet.core.errors import ConfigError, InputError, NotFoundError
from kuzet.core.i18n import Phrase
from kuzet.core.types import Image, User
from kuzet.governance.policy import Policy
from kuzet.governance.redaction import expand, obscure, plate_zones
from kuzet.ingest.sources import FrameSource, open_source, redact_url
from kuzet.pipeline.overlay import draw_traffic
from kuzet.pipeline.traffic import TrafficAnalyzer
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.store.media import encode_jpeg
from kuzet.store.status import CameraStatus, ServiceStatus, mark_wall_watched, read_status, read_wall_frame

log = logging.getLogger("kuzet")
GEOJSON_TYPES = ("FeatureCollection", "Feature", "Polygon", "MultiPolygon", "LineString", "MultiLineString", "Point",
                 "MultiPoint", "GeometryCollection")  # fmt: skip
FACE_COLOUR = (46, 204, 113)
PLATE_COLOUR = (52, 152, 219)


class CameraService:
    """Cameras and the live service that runs them."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow
        self._snapshot_seen: dict[tuple[int, str], float] = {}
        self._snapshot_lock = threading.Lock()

    def overview(self, actor: User) -> list[dict[str, object]]:
        """Every camera: configured, running live (working or not) or seen in an analysis; run counts and live state.

        A camera `kuzet run` reports is listed even when it is down, with its state and why; `state` is
        "not running" for a camera no live service runs, and "unknown" when the service stopped reporting.
        """
        self.uow.require(actor, "cameras.view")
        out: dict[str, dict[str, object]] = {}

        def row(name: str, source: str, fps: float | None) -> dict[str, object]:
            return out.setdefault(
                name, {"name": name, "source": source, "fps": fps, "runs": 0, "frames": 0, "last_run": ""}
            )

        for c in self.ctx.config.cameras:
            row(c.name, redact_url(c.source), c.fps)
        live, stale = self._live_cameras()
        for st in live.values():
            row(st.camera, st.source, None)
        with self.uow.read() as r:
            runs = r.events.camera_runs()
        for camera, source, frames, finished in runs:
            cam = row(camera, source, None)
            cam["runs"] = int(str(cam["runs"])) + 1
            cam["frames"] = int(str(cam["frames"])) + frames
            cam["last_run"] = finished.isoformat(timespec="seconds")
        for cam in out.values():
            cam.update(_live_fields(live.get(str(cam["name"])), stale=stale))
        return sorted(out.values(), key=lambda c: str(c["name"]))

    def camera(self, actor: User, name: str) -> dict[str, object]:
        """One camera's row of `overview`.

        Raises:
            NotFoundError: No camera of that name is configured, live or analysed.
        """
        for cam in self.overview(actor):
            if cam["name"] == name:
                return cam
        raise NotFoundError(Phrase("no camera named {name!r}", name=name), hint="see the camera list for the names")

    SNAPSHOT_AUDIT_S = 300.0
    """Watching a camera's wall picture is ledgered once per user and camera in this many seconds (the wall
    refreshes every picture every few seconds; one entry per refresh would drown the ledger)."""

    def snapshot(self, actor: User, name: str) -> tuple[bytes, float]:
        """A live camera's latest redacted picture for the camera wall, and when it was taken; watching is audited.

        Raises:
            NotFoundError: The camera has no picture (not live, not up, or `run.wall_snapshot_s` is 0).
        """
        self.uow.require(actor, "cameras.view")
        jpeg, taken = read_wall_frame(self.ctx.data_dir, name)
        try:  # only a camera with a picture is marked: a viewer cannot litter the folder with made-up names
            mark_wall_watched(self.ctx.data_dir, name)  # `kuzet run` keeps a watched picture live
        except OSError as exc:
            log.warning("camera %s: wall picture not marked as watched (%s); it stays at run.wall_idle_s", name, exc)
        key, now = (actor.user_id, name), time.monotonic()
        with self._snapshot_lock:
            due = now - self._snapshot_seen.get(key, -self.SNAPSHOT_AUDIT_S) >= self.SNAPSHOT_AUDIT_S
            if due:
                self._snapshot_seen[key] = now
        if due:
            self.uow.record(actor, "camera.view", object=f"camera:{name}", details={"wall": True})
        return jpeg, taken

    STALE_S = 60.0
    """A live status older than this means the service stopped reporting (it crashed or its machine is gone)."""

    def _live_cameras(self) -> tuple[dict[str, CameraStatus], bool]:
        """The cameras `kuzet run` last reported, and whether that report is stale."""
        try:
            status = read_status(self.ctx.data_dir)
        except NotFoundError:
            return {}, False
        stale = status.state != "stopped" and self.ctx.now().timestamp() - status.updated > self.STALE_S
        return {c.camera: c for c in status.cameras}, stale

    MAP_FILE_MAX = 20 * 2**20
    """The largest GeoJSON or site plan the map serves."""

    def map(self, actor: User) -> dict[str, object]:
        """The map: what it is drawn on (a GeoJSON city map, a site plan, or nothing) and the cameras on it.

        Each camera with a position of the map's kind comes with its state, counts and alerts waiting for review.
        """
        cams = self.overview(actor)
        with self.uow.read() as r:
            pending = r.alerts.pending_by_camera()
        where = {c.name: c.position for c in self.ctx.config.cameras if c.position is not None}
        m = self.ctx.config.map
        base = "geojson" if m.geojson else "plan" if m.plan else "none"
        placed = []
        for cam in cams:
            pos = where.get(str(cam["name"]))
            if pos is None:
                continue
            on_plan = pos.x is not None
            if (base == "plan") != on_plan:
                continue  # a lat/lon camera on a site plan (or the reverse) cannot be placed
            placed.append(
                cam | {"position": pos.model_dump(exclude_none=True), "open_alerts": pending.get(str(cam["name"]), 0)}
            )
        unplaced = sorted(str(c["name"]) for c in cams if all(p["name"] != c["name"] for p in placed))
        return {"base": base, "cameras": placed, "unplaced": unplaced}

    def map_file(self, actor: User, kind: str) -> tuple[bytes, str]:
        """The GeoJSON or the site plan the config names (read here, never from outside), and its media type.

        Raises:
            NotFoundError: The config names no such file, or it cannot be read.
            InputError: The file is too large, or not the kind it should be.
        """
        self.uow.require(actor, "cameras.view")
        m = self.ctx.config.map
        name = m.geojson if kind == "geojson" else m.plan if kind == "plan" else None
        if not name:
            raise NotFoundError(f"the config names no map {kind}", hint="set map.geojson or map.plan (docs/web.md)")
        path = Path(name).expanduser()
        path = path if path.is_absolute() else self.ctx.data_dir / path
        try:
            size = path.stat().st_size
            if size > self.MAP_FILE_MAX:
                raise InputError(f"the map {kind} {path.name} is larger than 20 MiB", hint="simplify it")
            data = path.read_bytes()
        except OSError as exc:
            raise NotFoundError(
                f"cannot read the map {kind} {path.name}: {exc.strerror}", hint="check map in the config"
            ) from None
        if kind == "geojson":
            try:
                doc = json.loads(data)
            except ValueError:
                raise InputError(f"{path.name} is not JSON", hint="give a GeoJSON file") from None
            if not isinstance(doc, dict) or doc.get("type") not in GEOJSON_TYPES:
                raise InputError(f"{path.name} is not GeoJSON", hint="a FeatureCollection, Feature or geometry")
            return data, "application/geo+json"
        kinds = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}
        media = next((t for magic, t in kinds.items() if data.startswith(magic)), None)
        if media is None:
            raise InputError(f"the site plan {path.name} is not a PNG or JPEG image", hint="export it as PNG")
        return data, media

    def check_purposes(self, actor: User, cameras: list[CameraConfig]) -> None:
        """Every live camera states a purpose, and none names a prohibited target (refusals are audited).

        Raises:
            ConfigError: A camera has no purpose.
            PolicyRefusal: A purpose carries a prohibited label (e.g. "watch activists").
        """
        refused = purpose_problems(cameras, self.ctx.policy)
        if refused is not None:
            name, reason = refused
            raise self.uow.refuse(actor, "service.refused", object=f"camera:{name}", reason=reason)

    def record_service_event(self, actor: User, action: str, *, details: Details) -> None:
        """Ledger a service-level action (`kuzet run` starting or stopping, with what it runs and sends where)."""
        self.uow.record(actor, action, details=details)

    def live_status(self, actor: User) -> ServiceStatus:
        """What `kuzet run` last reported about every live camera."""
        self.uow.require(actor, "cameras.status")
        return read_status(self.ctx.data_dir)

    @cached_property
    def _metrics_token(self) -> str | None:
        ref = self.ctx.config.run.metrics_token
        if ref is None:
            return None
        try:
            return self.ctx.secrets().resolve(ref, what="run.metrics_token")
        except ConfigError as exc:
            log.error("metrics token unavailable: %s", exc.message)  # never shown to the client
            return None

    def metrics_token_ok(self, token: str) -> bool:
        """Whether `token` is the configured Prometheus bearer token (none configured or resolvable: never)."""
        expected = self._metrics_token
        return bool(token) and expected is not None and hmac.compare_digest(expected.encode(), token.encode())

    def metrics_status(self, actor: User | None) -> ServiceStatus:
        """The live status for Prometheus: `actor` None means the bearer token was checked already."""
        if actor is not None:
            self.uow.require(actor, "metrics.read")
        try:
            return read_status(self.ctx.data_dir)
        except NotFoundError:
            return ServiceStatus(pid=0, started=0.0, updated=0.0, state="not running", cameras=[])

    def source(self, actor: User, name: str) -> str:
        """Where a camera's pictures come from: its configured source, else the source of its last analysis."""
        self.uow.require(actor, "cameras.view")
        for cam in self.ctx.config.cameras:
            if cam.name == name and cam.source:
                return cam.source
        live = self._live_cameras()[0].get(name)
        if live is not None and live.source:
            return live.source
        with self.uow.read() as r:
            source = r.events.last_source(name)
        if not source:
            raise NotFoundError(
                Phrase("camera {name!r} has no source to show", name=name),
                hint="configure it or analyse a video with it",
            )
        return source

    def replay(self, actor: User, name: str, *, fps: float = 5.0, max_frames: int = 3000) -> Iterator[bytes]:
        """JPEG frames of a camera's stream (or its last analysed video) with detections drawn; audited.

        Every face and plate is pixelated: the picture an operator watches never shows a stranger's face.
        """
        source = self.source(actor, name)
        frames = open_source(source, fps=fps, config=self.ctx.config.ingest)  # fails here, before any frame is sent
        self.uow.record(actor, "camera.view", object=f"camera:{name}", details={"fps": fps})
        return self._overlay_frames(name, frames, max_frames)

    def _overlay_frames(self, name: str, source: FrameSource, max_frames: int) -> Iterator[bytes]:
        models, grow = self.ctx.models, self.ctx.config.redaction.expand
        plates = np.zeros((0, 4), np.float32)
        camera = next((c for c in self.ctx.config.cameras if c.name == name), None)
        traffic = None
        if camera is not None and "traffic" in camera.analytics:
            from kuzet.detect.objects import build_object_detector

            traffic = TrafficAnalyzer(build_object_detector(camera.traffic.object_detector), camera.traffic)
        with source as frames:
            for i, frame in enumerate(frames):
                if i >= max_frames:
                    return
                image = frame.image.copy()
                h, w = image.shape[:2]
                faces = models.video_redactor.faces.detect(frame.image).boxes
                if i % 10 == 0:
                    plates = models.plate_detector.detect(frame.image).boxes
                obscure(image, expand(faces, grow, w, h))
                obscure(image, expand(plates, 0.33, w, h))
                if traffic is not None:
                    traffic.process(frame)
                    traffic_picture(image, traffic)
                for box, colour in [(b, FACE_COLOUR) for b in faces] + [(b, PLATE_COLOUR) for b in plates]:
                    x1, y1, x2, y2 = (int(v) for v in box)
                    cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
                label = f"{name}  t={frame.pts:.1f}s  faces {len(faces)}"
                cv2.putText(image, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
                yield encode_jpeg(image, quality=80)


def traffic_picture(image: Image, traffic: TrafficAnalyzer) -> Image:
    """A traffic camera's redacted picture made an operator's view, in place.

    The likely plate area of every tracked vehicle is hidden too (plates too small for the plate detector), then
    lines, zones, objects and speeds are drawn.
    """
    h, w = image.shape[:2]
    obscure(image, expand(plate_zones(traffic.vehicle_boxes()), 0.1, w, h))
    return draw_traffic(image, traffic.config, traffic.shown())


def _live_fields(st: CameraStatus | None, *, stale: bool) -> dict[str, object]:
    """A camera's live state for the camera list: state, why, since when, where, and its counters."""
    if st is None:
        return {"state": "not running", "reason": "", "since": "", "node": "", "live": {}}
    state, reason = st.state, st.reason
    if stale and state != "stopped":
        state, reason = "unknown", f"kuzet run stopped reporting; last state {st.state}"
    since = datetime.fromtimestamp(st.since, UTC).isoformat(timespec="seconds")
    counts = {k: getattr(st, k) for k in ("frames_analysed", "frames_dropped", "events", "alerts", "passages")}
    return {"state": state, "reason": reason, "since": since, "node": st.node, "live": counts}


def purpose_problems(cameras: list[CameraConfig], policy: Policy) -> tuple[str, str] | None:
    """What `kuzet run` refuses in the cameras' purposes: (camera, reason) of a prohibited purpose, or None.

    `kuzet config check` asks the same, so a config it passes is one `kuzet run` accepts.

    Raises:
        ConfigError: A camera states no purpose.
    """
    missing = [c.name for c in cameras if not c.purpose.strip()]
    if missing:
        raise ConfigError(
            f"camera(s) {', '.join(missing)} state no purpose",
            hint="add `purpose: ...` to each camera: why it is analysed (e.g. traffic safety at junction 4)",
        )
    for cam in cameras:
        refusal = policy.screener.screen("camera purpose", cam.purpose)
        if refusal is not None:
            return cam.name, refusal.reason
    return None

"""A traffic camera's frames turned into passages and violations: detection, tracking, rules, plates (no database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kuzet.analytics.plates import PlateText, plate_formats, vote
from kuzet.analytics.traffic import STOPPED_MPS, GroundPlane, Passage, Violation, crossing, inside, signal_is_red
from kuzet.config.models import TrackerConfig, TrafficConfig
from kuzet.core.types import Detections, Frame, Image, PictureAt
from kuzet.recognize.align import crop_region
from kuzet.track.iou import IoUTracker


@dataclass
class PlateTrack:
    """A tracked vehicle whose plate was read: the voted text and the best crop."""

    track_id: int
    plate: PlateText
    start: float
    end: float
    crop: Image | None
    crop_box: NDArray[np.float32] | None = None
    """The plate's box in the frame the crop comes from (analysed pixels)."""
    crop_pts: float | None = None
    """Stream time of that frame."""


@dataclass
class _Track:
    track_id: int
    label: str
    times: list[float] = field(default_factory=list)
    points: list[tuple[float, float]] = field(default_factory=list)
    box: NDArray[np.float32] = field(default_factory=lambda: np.zeros(4, np.float32))
    crossings: dict[str, tuple[int, float]] = field(default_factory=dict)
    zone_since: dict[str, float] = field(default_factory=dict)
    stopped_since: float | None = None
    plates: list[PlateText] = field(default_factory=list)
    plate_crop: Image | None = None
    plate_box: NDArray[np.float32] | None = None
    plate_pts: float | None = None
    plate_score: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    frames_seen: int = 0
    first_view: tuple[float, Image, NDArray[np.float32]] | None = None
    last_view: tuple[float, Image, NDArray[np.float32]] | None = None


@dataclass
class TrafficStats:
    """Counts for one run."""

    frames: int = 0
    detections: int = 0
    tracks: int = 0
    passages: int = 0
    violations: int = 0
    plates_read: int = 0
    per_line: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Shown:
    """A tracked object in the latest frame, as an overlay draws it: box, kind, track and current ground speed."""

    box: tuple[float, float, float, float]
    label: str
    track_id: int
    speed_kmh: tuple[float, float] | None
    """Speed over the last two seconds and its uncertainty (km/h), on a calibrated camera."""


PlateReadFn = Callable[[Image, NDArray[np.float32]], tuple[PlateText, NDArray[np.float32], Image] | None]
"""Reads the plate on a vehicle: (frame, vehicle box) -> (plate, plate box in frame pixels, plate crop) or None."""


class TrafficAnalyzer:
    """Tracks objects from a detector and applies a camera's lines, zones, calibration and rules."""

    def __init__(
        self,
        detector: Any,
        config: TrafficConfig,
        *,
        plate_reader: PlateReadFn | None = None,
        signal: Callable[[float], bool | None] | None = None,
    ) -> None:
        self.detector = detector
        self.config = config
        self.tracker = IoUTracker(TrackerConfig(iou_threshold=0.2, high_score=0.3, max_gap_s=0.6, min_hits=1))
        self.ground = GroundPlane(config.calibration) if config.calibration else None
        self.plate_reader = plate_reader if config.plates else None
        self.signal = signal
        plate_formats(config.plate_formats)  # unknown regions fail now, not mid-stream
        self.stats = TrafficStats()
        self._tracks: dict[int, _Track] = {}
        self.passages: list[Passage] = []
        self.violations: list[Violation] = []
        self.plates: list[PlateTrack] = []
        self._last_pts: float | None = None
        self._last_vehicles = np.zeros((0, 4), np.float32)

    def process(self, frame: Frame) -> None:
        """One frame: detect, track, and check every rule for the tracks it moved."""
        self.stats.frames += 1
        self._last_pts = frame.pts
        dets: Detections = self.detector.detect(frame.image)
        self.stats.detections += len(dets)
        vehicle = dets.labels == "vehicle" if dets.labels is not None else np.ones(len(dets), bool)
        self._last_vehicles = dets.boxes[vehicle].astype(np.float32)
        update = self.tracker.update(dets, frame.pts)
        red = self._red(frame)
        for i, tid in enumerate(update.track_ids.tolist()):
            if tid < 0:
                continue
            label = str(dets.labels[i]) if dets.labels is not None else "object"
            track = self._tracks.setdefault(tid, _Track(tid, label))
            box = dets.boxes[i]
            point = ((float(box[0]) + float(box[2])) / 2, float(box[3]))
            track.box = box.copy()
            track.frames_seen += 1
            view = (frame.pts, frame.image, track.box)  # a reference to the decoded frame, not a copy
            if track.first_view is None:
                track.first_view = view
            track.last_view = view
            previous = np.asarray(track.points[-1], np.float64) if track.points else None
            track.times.append(frame.pts)
            track.points.append(point)
            current = np.asarray(point, np.float64)
            if previous is not None:
                self._lines(track, previous, current, frame, red)
            self._zones(track, current, frame)
            if (
                self.plate_reader is not None
                and track.label == "vehicle"
                and (track.frames_seen - 1) % self.config.plate_every == 0
            ):
                self._read_plate(track, frame)
            for v in track.violations:
                if len(v.frames) < 3 and frame.pts - v.frames[-1][0] >= 0.5:
                    v.frames.append((frame.pts, frame.image, box.copy()))
        for tid in update.finished:
            self._finish(tid)

    def finish(self) -> None:
        """End of stream: close every open track."""
        for tid in self.tracker.flush():
            self._finish(tid)

    def shown(self, window_s: float = 2.0) -> list[Shown]:
        """The objects tracked in the latest frame, with their speed over the last `window_s` (for overlays)."""
        out = []
        for track in self._tracks.values():
            if not track.times or track.times[-1] != self._last_pts:
                continue
            t = np.asarray(track.times)
            start = int(np.searchsorted(t, t[-1] - window_s))
            speed = None
            if self.ground is not None:
                got = self.ground.speed(t[start:], np.asarray(track.points[start:], np.float64))
                speed = (got[0] * 3.6, got[1] * 3.6) if got else None
            x1, y1, x2, y2 = (float(v) for v in track.box)
            out.append(Shown((x1, y1, x2, y2), track.label, track.track_id, speed))
        return out

    def vehicle_boxes(self, within_s: float = 1.0) -> NDArray[np.float32]:
        """Where plates may be shown: every vehicle box of the latest frame, tracked or not, and more.

        Also the last box of each vehicle tracked in the last `within_s` (one the detector missed on this frame is
        still nearby).
        """
        boxes = [self._last_vehicles]
        if self._last_pts is not None:
            recent = [t.box for t in self._tracks.values() if t.label == "vehicle" and t.times
                      and t.times[-1] >= self._last_pts - within_s]  # fmt: skip
            if recent:
                boxes.append(np.asarray(recent, np.float32))
        return np.concatenate(boxes).astype(np.float32)

    def _red(self, frame: Frame) -> bool | None:
        rl = self.config.red_light
        if rl is None:
            return None
        if self.signal is not None:
            return self.signal(frame.pts)
        if rl.signal_region is not None:
            return signal_is_red(frame.image, rl.signal_region)
        return None

    def _lines(
        self, track: _Track, p0: NDArray[np.float64], p1: NDArray[np.float64], frame: Frame, red: bool | None
    ) -> None:
        for line in self.config.lines:
            if line.name in track.crossings:
                continue
            d = crossing(line.points, p0, p1)
            if d:
                track.crossings[line.name] = (d, frame.pts)
        rl = self.config.red_light
        if rl is not None and red and "red-light" not in {v.kind for v in track.violations}:
            d = crossing(rl.stop_line, p0, p1)
            if d:
                self._violate(track, "red-light", "stop line", frame, {"signal": "red", "crossed_at_s": frame.pts})

    def _zones(self, track: _Track, p: NDArray[np.float64], frame: Frame) -> None:
        kinds = {v.kind for v in track.violations}
        for zone in self.config.zones:
            if not inside(zone, p):
                track.zone_since.pop(zone.name, None)
                continue
            track.zone_since.setdefault(zone.name, frame.pts)
            if zone.rule == "one-way" and zone.direction is not None and "one-way" not in kinds:
                moved = self._recent_motion(track, window_s=1.0)
                if moved is not None and np.linalg.norm(moved) >= 20:
                    d = np.asarray(zone.direction, np.float64)
                    cos = float(moved @ d / (np.linalg.norm(moved) * np.linalg.norm(d)))
                    if cos < -0.5:
                        self._violate(track, "one-way", zone.name, frame, {"direction_cosine": round(cos, 3)})
            if zone.rule == "no-stopping" and "no-stopping" not in kinds:
                if self._is_stopped(track):
                    if track.stopped_since is None:
                        track.stopped_since = frame.pts
                    stopped = frame.pts - max(track.stopped_since, track.zone_since[zone.name])
                    if stopped > zone.max_stop_s:
                        self._violate(
                            track,
                            "no-stopping",
                            zone.name,
                            frame,
                            {"stopped_s": round(stopped, 2), "max_stop_s": zone.max_stop_s},
                        )
                else:
                    track.stopped_since = None

    def _recent_motion(self, track: _Track, window_s: float) -> NDArray[np.float64] | None:
        t = np.asarray(track.times)
        if len(t) < 2:
            return None
        start = int(np.searchsorted(t, t[-1] - window_s))
        start = min(start, len(t) - 2)
        return np.asarray(track.points[-1], np.float64) - np.asarray(track.points[start], np.float64)

    def _is_stopped(self, track: _Track) -> bool:
        t = np.asarray(track.times)
        if len(t) < 3 or t[-1] - t[0] < 1.0:
            return False
        start = int(np.searchsorted(t, t[-1] - 1.0))
        pts = np.asarray(track.points[start:], np.float64)
        if self.ground is not None:
            g = self.ground.to_ground(pts)
            speed = float(np.linalg.norm(g[-1] - g[0]) / max(1e-6, t[-1] - t[start]))
            return speed < STOPPED_MPS
        return float(np.linalg.norm(pts[-1] - pts[0]) / max(1e-6, t[-1] - t[start])) < 3.0

    def _violate(self, track: _Track, kind: str, where: str, frame: Frame, measurements: dict[str, Any]) -> None:
        v = Violation(kind, track.track_id, frame.pts, where, measurements, track.box.copy())
        v.frames.append((frame.pts, frame.image, track.box.copy()))
        v.analysed_size = (frame.image.shape[1], frame.image.shape[0])
        track.violations.append(v)

    def _read_plate(self, track: _Track, frame: Frame) -> None:
        assert self.plate_reader is not None
        got = self.plate_reader(frame.image, track.box)
        if got is None:
            return
        plate, box, crop = got
        track.plates.append(plate)
        self.stats.plates_read += 1
        if plate.score > track.plate_score:
            track.plate_score, track.plate_crop, track.plate_box = plate.score, crop, box
            track.plate_pts = frame.pts

    def _speed(self, track: _Track) -> tuple[float, float] | None:
        if self.ground is None:
            return None
        return self.ground.speed(np.asarray(track.times), np.asarray(track.points, np.float64))

    def _finish(self, tid: int) -> None:
        track = self._tracks.pop(tid, None)
        if track is None or track.frames_seen < self.config.min_track_frames:
            return
        self.stats.tracks += 1
        plate = vote(track.plates)
        text = plate.text if plate else None
        if plate is not None:
            self.plates.append(
                PlateTrack(
                    tid, plate, track.times[0], track.times[-1], track.plate_crop, track.plate_box, track.plate_pts
                )
            )
        speed = self._speed(track)
        kmh = (round(speed[0] * 3.6, 1), round(speed[1] * 3.6, 1)) if speed else (None, None)
        for line_name, (d, pts) in track.crossings.items():
            direction = "in" if d > 0 else "out"
            passage = Passage(tid, line_name, direction, pts, track.label, kmh[0], kmh[1], text)
            self.passages.append(passage)
            self.stats.passages += 1
            per = self.stats.per_line.setdefault(line_name, {"in": 0, "out": 0})
            per[direction] += 1
        limit = self.config.speed_limit_kmh
        if limit is not None and kmh[0] is not None and kmh[1] is not None and kmh[0] - 2 * kmh[1] > limit:
            # only when the speed exceeds the limit by more than twice its uncertainty
            v = Violation("speeding", tid, track.times[-1], "camera", {}, track.box.copy())
            v.frames = [view for view in (track.first_view, track.last_view) if view is not None]
            if v.frames:
                v.analysed_size = (v.frames[0][1].shape[1], v.frames[0][1].shape[0])
            track.violations.append(v)
        for v in track.violations:
            v.plate, v.plate_crop, v.plate_box, v.plate_pts = text, track.plate_crop, track.plate_box, track.plate_pts
            if kmh[0] is not None:
                v.measurements.update({"speed_kmh": kmh[0], "speed_uncertainty_kmh": kmh[1]})
            if v.kind == "speeding":
                v.measurements["speed_limit_kmh"] = limit
            self.violations.append(v)
            self.stats.violations += 1


PLATE_MARGIN = 0.1
"""A plate crop cut again from the main stream: the plate's box enlarged by this share of its size on each side."""


def _scaled(box: NDArray[np.float32], picture: Image, analysed: tuple[int, int]) -> NDArray[np.float32]:
    h, w = picture.shape[:2]
    return (box * np.array([w / analysed[0], h / analysed[1]] * 2, np.float32)).astype(np.float32)


def sharper_plate_crop(
    crop: Image | None, box: NDArray[np.float32] | None, pts: float | None, picture_at: PictureAt
) -> Image | None:
    """The plate crop cut again from the main stream at the moment it was read, when it holds it; else `crop`.

    The plate's axis-aligned box is scaled from the analysed frame's size to the main stream's, each axis on its own.
    """
    if box is None or pts is None:
        return crop
    got = picture_at(pts)
    if got is None:
        return crop
    picture, analysed = got
    again, _, _ = crop_region(picture, _scaled(box, picture, analysed), margin=PLATE_MARGIN)
    return again if again.size else crop


def sharper_violation(v: Violation, picture_at: PictureAt) -> Violation:
    """The same evidence cut from the main stream where it holds each moment: scene frames and plate crop.

    Each scene frame the main stream holds is replaced by its picture of the same moment, with the vehicle's box
    scaled; a frame it does not hold (older than `record.evidence_s`, or the main stream was down) stays the
    analysed one. Measurements, times and the plate text are those of the analysis.
    """
    frames: list[tuple[float, Image, NDArray[np.float32]]] = []
    for pts, image, box in v.frames:
        got = picture_at(pts)
        if got is None:
            frames.append((pts, image, box))
        else:
            picture, analysed = got
            frames.append((pts, picture, _scaled(box, picture, analysed)))
    crop = sharper_plate_crop(v.plate_crop, v.plate_box, v.plate_pts, picture_at)
    return replace(v, frames=frames, plate_crop=crop)


def sharper_plate_track(p: PlateTrack, picture_at: PictureAt) -> PlateTrack:
    """The plate track with its crop cut from the main stream where it holds the moment (see `sharper_plate_crop`)."""
    return replace(p, crop=sharper_plate_crop(p.crop, p.crop_box, p.crop_pts, picture_at))

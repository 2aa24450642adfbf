"""Traffic analytics on tracked objects: counting lines, ground-plane speed, and rules.

The rules are red light, one-way (wrong way), no stopping and speeding. Everything here works on plain track points
(time, image position), so each rule is tested with synthetic tracks; `TrafficAnalyzer` feeds it from a detector
and the IoU tracker. A track's reference point is the bottom centre of its box, where the vehicle touches the road,
which is what the ground-plane calibration maps to metres.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.analytics.plates import PlateText, plate_formats, vote
from kuzet.config.models import Calibration, CountingLine, TrackerConfig, TrafficConfig, Zone
from kuzet.core.errors import InputError
from kuzet.core.types import Detections, Frame, Image
from kuzet.track.iou import IoUTracker

Point = tuple[float, float]
STOPPED_MPS = 0.5
"""Below this ground speed (or about 3 px/s without a calibration) a vehicle counts as stopped."""


class GroundPlane:
    """Image points to metres on the road, from a 4-point calibration."""

    def __init__(self, calibration: Calibration) -> None:
        src = np.asarray(calibration.image, np.float32)
        dst = np.asarray(calibration.ground, np.float32)
        if abs(cv2.contourArea(src)) < 1.0 or abs(cv2.contourArea(dst)) < 1e-6:
            raise InputError("calibration points must not be collinear", hint="give the corners of a road rectangle")
        self.matrix = cv2.getPerspectiveTransform(src, dst)
        self.calibration = calibration

    def to_ground(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 2) image pixels -> (N, 2) metres."""
        out = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), self.matrix)
        return np.asarray(out.reshape(-1, 2), np.float64)

    def metres_per_pixel(self, point: Point) -> float:
        """Local scale at an image point (mean of the x and y pixel steps)."""
        p = np.array([point, (point[0] + 1, point[1]), (point[0], point[1] + 1)], np.float64)
        g = self.to_ground(p)
        return float((np.linalg.norm(g[1] - g[0]) + np.linalg.norm(g[2] - g[0])) / 2)

    def speed(self, times: NDArray[np.float64], points: NDArray[np.float64]) -> tuple[float, float] | None:
        """Ground speed (m/s) by a least-squares fit of position against time, and its standard uncertainty.

        The uncertainty combines the fit's residual error, the calibration's `pixel_error` at the track's position
        propagated over the track's duration, and its `scale_error`. None with fewer than 3 points or under 0.3 s.
        """
        if len(times) < 3 or times[-1] - times[0] < 0.3:
            return None
        g = self.to_ground(points)
        t = times - times.mean()
        denom = float((t**2).sum())
        vx = float((t * (g[:, 0] - g[:, 0].mean())).sum() / denom)
        vy = float((t * (g[:, 1] - g[:, 1].mean())).sum() / denom)
        v = float(np.hypot(vx, vy))
        resid = g - (g.mean(axis=0) + np.outer(t, [vx, vy]))
        fit_err = float(np.sqrt((resid**2).sum() / max(1, 2 * len(t) - 4) / denom))
        mpp = self.metres_per_pixel((float(points[:, 0].mean()), float(points[:, 1].mean())))
        pixel_err = self.calibration.pixel_error * mpp * np.sqrt(2) / float(times[-1] - times[0])
        scale_err = v * self.calibration.scale_error
        return v, float(np.sqrt(fit_err**2 + pixel_err**2 + scale_err**2))


def side_of(line: tuple[Point, Point], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signed side of points (N, 2) relative to the directed line a->b (positive: its right-hand side on screen)."""
    (ax, ay), (bx, by) = line
    return np.asarray((bx - ax) * (p[:, 1] - ay) - (by - ay) * (p[:, 0] - ax), np.float64)


def crossing(line: tuple[Point, Point], p0: NDArray[np.float64], p1: NDArray[np.float64]) -> int:
    """+1 if the step p0->p1 crosses the segment from its negative to positive side, -1 the other way, else 0."""
    s0, s1 = side_of(line, np.stack([p0, p1]))
    if (s0 >= 0) == (s1 >= 0):  # a point on the line counts as the positive side, so it is crossed exactly once
        return 0
    # the step must cross within the segment's extent, not its extension
    a, b = np.asarray(line[0], np.float64), np.asarray(line[1], np.float64)
    t0, t1 = side_of(((p0[0], p0[1]), (p1[0], p1[1])), np.stack([a, b]))
    if (t0 > 0 and t1 > 0) or (t0 < 0 and t1 < 0):
        return 0
    return 1 if s1 >= 0 else -1


def inside(zone: Zone, p: NDArray[np.float64]) -> bool:
    """True if an image point is inside (or on) the zone's polygon."""
    poly = np.asarray(zone.polygon, np.float32).reshape(-1, 1, 2)
    return bool(cv2.pointPolygonTest(poly, (float(p[0]), float(p[1])), False) >= 0)


def signal_is_red(image: Image, region: tuple[int, int, int, int]) -> bool:
    """Whether the signal head in `region` (x, y, w, h) shows red: more bright red pixels than green, and enough."""
    x, y, w, h = region
    patch = image[max(0, y) : y + h, max(0, x) : x + w]
    if patch.size == 0:
        return False
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    lit = (sat > 90) & (val > 120)
    red = lit & ((hue < 10) | (hue > 170))
    green = lit & (hue > 40) & (hue < 95)
    return bool(red.mean() > 0.05 and red.sum() > green.sum())


@dataclass
class Passage:
    """An object crossing a counting line."""

    track_id: int
    line: str
    direction: str  # "in": to the line's right-hand side walking from its first point to its second, "out": back
    pts: float
    label: str
    speed_kmh: float | None = None
    speed_err_kmh: float | None = None
    plate: str | None = None


@dataclass
class Violation:
    """A rule broken by one track, with what evidence needs."""

    kind: str  # red-light | one-way | no-stopping | speeding
    track_id: int
    pts: float
    where: str
    measurements: dict[str, Any]
    box: NDArray[np.float32]
    frames: list[tuple[float, Image, NDArray[np.float32]]] = field(default_factory=list)
    plate: str | None = None
    plate_crop: Image | None = None
    plate_box: NDArray[np.float32] | None = None


@dataclass
class PlateTrack:
    """A tracked vehicle whose plate was read: the voted text and the best crop."""

    track_id: int
    plate: PlateText
    start: float
    end: float
    crop: Image | None


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

    def process(self, frame: Frame) -> None:
        """One frame: detect, track, and check every rule for the tracks it moved."""
        self.stats.frames += 1
        dets: Detections = self.detector.detect(frame.image)
        self.stats.detections += len(dets)
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
                self._read_plate(track, frame.image)
            for v in track.violations:
                if len(v.frames) < 3 and frame.pts - v.frames[-1][0] >= 0.5:
                    v.frames.append((frame.pts, frame.image, box.copy()))
        for tid in update.finished:
            self._finish(tid)

    def finish(self) -> None:
        """End of stream: close every open track."""
        for tid in self.tracker.flush():
            self._finish(tid)

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
        track.violations.append(v)

    def _read_plate(self, track: _Track, image: Image) -> None:
        assert self.plate_reader is not None
        got = self.plate_reader(image, track.box)
        if got is None:
            return
        plate, box, crop = got
        track.plates.append(plate)
        self.stats.plates_read += 1
        if plate.score > track.plate_score:
            track.plate_score, track.plate_crop, track.plate_box = plate.score, crop, box

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
            self.plates.append(PlateTrack(tid, plate, track.times[0], track.times[-1], track.plate_crop))
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
            track.violations.append(v)
        for v in track.violations:
            v.plate, v.plate_crop, v.plate_box = text, track.plate_crop, track.plate_box
            if kmh[0] is not None:
                v.measurements.update({"speed_kmh": kmh[0], "speed_uncertainty_kmh": kmh[1]})
            if v.kind == "speeding":
                v.measurements["speed_limit_kmh"] = limit
            self.violations.append(v)
            self.stats.violations += 1


def counting_lines_summary(lines: list[CountingLine], passages: list[Passage]) -> dict[str, dict[str, int]]:
    """Passages per line and direction (lines with none included)."""
    out = {line.name: {"in": 0, "out": 0} for line in lines}
    for p in passages:
        out.setdefault(p.line, {"in": 0, "out": 0})[p.direction] += 1
    return out

"""Traffic analytics on tracked objects: counting lines, ground-plane speed, and rules.

The rules are red light, one-way (wrong way), no stopping and speeding. Everything here works on plain track points
(time, image position), so each rule is tested with synthetic tracks; `TrafficAnalyzer` feeds it from a detector
and the IoU tracker. A track's reference point is the bottom centre of its box, where the vehicle touches the road,
which is what the ground-plane calibration maps to metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import Calibration, CountingLine, Zone
from kuzet.core.errors import InputError
from kuzet.core.types import Image

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
    plate_pts: float | None = None
    """Stream time of the frame the plate crop (and `plate_box`, in that frame's pixels) comes from."""
    analysed_size: tuple[int, int] | None = None
    """Width and height of the analysed frames: the pixels of `box`, the measurements and the calibration (scene
    frames cut from a camera's main stream are larger; their boxes are scaled)."""


def counting_lines_summary(lines: list[CountingLine], passages: list[Passage]) -> dict[str, dict[str, int]]:
    """Passages per line and direction (lines with none included)."""
    out = {line.name: {"in": 0, "out": 0} for line in lines}
    for p in passages:
        out.setdefault(p.line, {"in": 0, "out": 0})[p.direction] += 1
    return out

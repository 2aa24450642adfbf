"""What an operator sees drawn on a traffic camera's picture: lines, zones, tracked objects and their speeds.

Drawn after redaction, on the picture that is shown (the camera wall, the camera page's replay).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from kuzet.config.models import TrafficConfig
from kuzet.core.types import Image
from kuzet.pipeline.traffic import Shown

LINE_COLOUR = (255, 200, 0)  # RGB, as kuzet's frames are: amber counting lines
ZONE_COLOUR = (0, 200, 255)  # cyan zones
STOP_COLOUR = (255, 0, 0)  # red stop line
OBJECT_COLOURS = {"vehicle": (80, 220, 80), "person": (255, 140, 0)}
OTHER_COLOUR = (220, 220, 220)


def _text(image: Image, text: str, at: tuple[int, int], colour: tuple[int, int, int], scale: float) -> None:
    """Text with a dark outline, readable on any background."""
    thick = max(1, round(scale * 2))
    cv2.putText(image, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(image, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def _pt(p: tuple[float, float]) -> tuple[int, int]:
    return round(p[0]), round(p[1])


def draw_traffic(image: Image, config: TrafficConfig, objects: Sequence[Shown] = ()) -> Image:
    """Draw `config`'s lines, zones and stop line and `objects` (boxes, track ids, speeds) onto `image`, in place.

    A counting line carries its name and an arrow to its `in` side (the right-hand side walking from its first
    point to its second); a speed is shown with its uncertainty, as every speed kuzet reports.
    """
    h, w = image.shape[:2]
    scale = max(0.4, max(h, w) / 1600)
    thick = max(1, round(max(h, w) / 500))
    for zone in config.zones:
        poly = np.asarray([_pt(p) for p in zone.polygon], np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [poly], True, ZONE_COLOUR, thick, cv2.LINE_AA)
        label = zone.name if zone.rule == "none" else f"{zone.name} ({zone.rule})"
        _text(image, label, _pt(zone.polygon[0]), ZONE_COLOUR, scale)
    for line in config.lines:
        a, b = np.asarray(line.points[0], np.float64), np.asarray(line.points[1], np.float64)
        cv2.line(image, _pt(line.points[0]), _pt(line.points[1]), LINE_COLOUR, thick, cv2.LINE_AA)
        mid, along = (a + b) / 2, b - a
        norm = float(np.hypot(*along)) or 1.0
        inward = np.asarray([-along[1], along[0]]) / norm  # the right-hand side in image coordinates (y down)
        tip = mid + inward * max(12.0, 0.04 * max(h, w))
        cv2.arrowedLine(image, _pt((mid[0], mid[1])), _pt((tip[0], tip[1])), LINE_COLOUR, thick, cv2.LINE_AA)
        _text(image, f"{line.name} in", _pt((tip[0] + 4, tip[1])), LINE_COLOUR, scale)
    if config.red_light is not None:
        p0, p1 = config.red_light.stop_line
        cv2.line(image, _pt(p0), _pt(p1), STOP_COLOUR, thick + 1, cv2.LINE_AA)
    for obj in objects:
        colour = OBJECT_COLOURS.get(obj.label, OTHER_COLOUR)
        x1, y1, x2, y2 = (round(v) for v in obj.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thick)
        label = f"#{obj.track_id} {obj.label}"
        if obj.speed_kmh is not None:
            label += f" {obj.speed_kmh[0]:.0f}+-{obj.speed_kmh[1]:.0f} km/h"
        _text(image, label, (x1, max(12, y1 - 4)), colour, scale)
    return image

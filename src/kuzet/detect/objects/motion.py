"""Moving objects on a fixed camera: background subtraction (OpenCV MOG2) on a small frame, then blobs to boxes."""

from __future__ import annotations

import cv2
import numpy as np

from kuzet.config.models import MotionDetectorConfig
from kuzet.core.types import Detections, Image


class MotionDetector:
    """Boxes around moving regions, labelled `vehicle` or `person` by size; needs a fixed camera.

    The frame is shrunk to `width` pixels, shadows (MOG2 marks them grey) are dropped, the mask is opened to remove
    noise and closed to join a vehicle's parts, and each blob of at least `min_area` (a share of the frame) becomes a
    box. The background adapts over `history` frames, so parked cars fade into it.
    """

    name = "motion"

    def __init__(self, config: MotionDetectorConfig | None = None) -> None:
        self.config = config or MotionDetectorConfig()
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=self.config.history, varThreshold=self.config.var_threshold, detectShadows=True
        )
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))

    def detect(self, image: Image) -> Detections:
        """Moving objects in an RGB frame (boxes in the frame's pixels, score = share of the box that moves)."""
        h, w = image.shape[:2]
        scale = min(1.0, self.config.width / w)
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        mask = self._subtractor.apply(small)
        mask = np.where(mask > 200, 255, 0).astype(np.uint8)  # 127 = shadow
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return Detections.empty(with_landmarks=False)
        stats = stats[1:]
        min_area = self.config.min_area * mask.shape[0] * mask.shape[1]
        keep = stats[:, cv2.CC_STAT_AREA] >= min_area
        stats = stats[keep]
        if len(stats) == 0:
            return Detections.empty(with_landmarks=False)
        x, y, bw, bh, area = (stats[:, i].astype(np.float32) for i in range(5))
        boxes = np.stack([x, y, x + bw, y + bh], axis=1) / scale
        scores = (area / np.maximum(bw * bh, 1.0)).astype(np.float32)
        # a standing person is taller than wide; anything else that moves on a road is taken for a vehicle
        labels = np.where(bh > 1.6 * bw, "person", "vehicle")
        return Detections(boxes=boxes.astype(np.float32), scores=scores, labels=labels)

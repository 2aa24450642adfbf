"""Recall-first face finding for redaction: two detectors, low thresholds, an enlarged pass for small faces.

Recognition wants few, good faces; redaction wants none missed. This finder runs CenterFace at the image's own
resolution and YuNet at the image's own resolution and enlarged (small faces become large enough for it), both with
a low threshold, and merges what they find. Measured with `kuzet eval redact` (docs/accuracy.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from kuzet.config.models import CenterFaceConfig, RedactionConfig, YuNetConfig
from kuzet.core.geometry import nms
from kuzet.core.types import Detections, Image

MERGE_IOU = 0.5


class RecallFaceFinder:
    """A `FaceDetector` for hiding faces: the union of CenterFace and YuNet at one and at `upscale` times the size."""

    name = "recall-first"

    def __init__(self, config: RedactionConfig | None = None, *, video: bool = False) -> None:
        from kuzet.detect.face.centerface import CenterFaceDetector
        from kuzet.detect.face.yunet import YuNetDetector

        self.config = cfg = config or RedactionConfig()
        self.upscale = cfg.video_upscale if video else cfg.upscale
        # CenterFace at the full resolution the scene has (up to max_side), down to 4 px faces.
        self.centerface = CenterFaceDetector(
            CenterFaceConfig(
                score_threshold=cfg.score_threshold,
                min_face=4,
                input_min_face=64,
                max_side=cfg.video_max_side if video else cfg.max_side,
            )
        )
        self.yunet = YuNetDetector(YuNetConfig(score_threshold=cfg.score_threshold, min_face=3, max_side=cfg.max_side))

    def detect(self, image: Image) -> Detections:
        """Every face found by either detector at either scale, merged (boxes in the image's pixels)."""
        h, w = image.shape[:2]
        cfg = self.config
        parts = [self.centerface.detect(image), self.yunet.detect(image)]
        scale = min(self.upscale, cfg.max_upscaled_side / max(h, w))
        if scale > 1.05:
            size = (round(w * scale), round(h * scale))
            big = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), np.uint8)
            found = self.yunet.detect_at_input(big)
            if len(found):
                sx, sy = w / big.shape[1], h / big.shape[0]
                parts.append(Detections(found.boxes * np.asarray([sx, sy, sx, sy], np.float32), found.scores))
        boxes = np.concatenate([p.boxes for p in parts]).astype(np.float32)
        if not len(boxes):
            return Detections.empty()
        scores = np.concatenate([p.scores for p in parts]).astype(np.float32)
        keep = nms(boxes, scores, MERGE_IOU)
        return Detections(boxes=boxes[keep], scores=scores[keep])

"""Motion gating: a cheap per-frame test that decides whether the detectors need to run (as Frigate does).

The frame is shrunk to a small grey image and compared with a running average of earlier ones; if enough pixels
changed, something moves. Detectors run on frames with motion, on every frame while a track is open (so tracks
are followed to their end), and at least every `refresh_s` seconds (so someone standing still is still found).
Where only part of the frame moves, `regions` gives the moving parts as padded boxes in the frame's pixels, so that
a detector can look there only.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import MotionGateConfig
from kuzet.core.types import Frame


class MotionGate:
    """Per-camera motion test; `needed(frame, busy)` says whether to run the detectors on this frame."""

    def __init__(self, config: MotionGateConfig | None = None) -> None:
        self.config = config or MotionGateConfig()
        self._background: NDArray[np.float32] | None = None
        self._mask: NDArray[np.uint8] | None = None
        self._scale = 1.0
        self._last_run = -np.inf
        self.checked = 0
        self.skipped = 0

    def moving(self, frame: Frame) -> bool:
        """Whether enough of the frame changed against the running background (which this call updates)."""
        image = frame.image
        h, w = image.shape[:2]
        width = min(self.config.width, w)
        small = cv2.resize(
            cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA
        )
        blurred: NDArray[np.float32] = np.asarray(cv2.GaussianBlur(small, (5, 5), 0), np.float32)
        if self._background is None or self._background.shape != blurred.shape:
            self._background = blurred
            return True
        mask = (cv2.absdiff(blurred, self._background) > self.config.pixel_threshold).astype(np.uint8)
        cv2.accumulateWeighted(blurred, self._background, 0.2)
        self._mask, self._scale = mask, w / width
        return float(mask.mean()) >= self.config.min_changed

    def regions(self, *, pad: float = 0.5) -> NDArray[np.float32]:
        """The moving parts of the last frame `moving` saw, as boxes (N, 4) x1, y1, x2, y2 in its pixels.

        Changed pixels are joined (a dilation), each connected part is boxed, padded by `pad` of its larger side
        on every side (a walking body's motion box then holds its head), and overlapping boxes are merged.
        """
        if self._mask is None or not self._mask.any():
            return np.zeros((0, 4), np.float32)
        joined = cv2.dilate(self._mask, np.ones((5, 5), np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats(joined)
        h, w = self._mask.shape
        boxes = []
        for x, y, bw, bh, _area in stats[1:count]:
            grow = pad * max(bw, bh)
            boxes.append([max(0.0, x - grow), max(0.0, y - grow), min(w, x + bw + grow), min(h, y + bh + grow)])
        return merge_boxes(np.asarray(boxes, np.float32)) * np.float32(self._scale)

    def needed(self, frame: Frame, *, busy: bool) -> bool:
        """Run the detectors on this frame? Always for stills and when disabled."""
        if not self.config.enabled or frame.still:
            return True
        self.checked += 1
        motion = self.moving(frame)
        run = motion or busy or frame.pts - self._last_run >= self.config.refresh_s or frame.pts < self._last_run
        if run:
            self._last_run = frame.pts
        else:
            self.skipped += 1
        return run


def merge_boxes(boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    """Overlapping boxes (N, 4) merged into their union boxes, until none overlap."""
    merged = [b.copy() for b in boxes]
    changed = True
    while changed and len(merged) > 1:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    merged[i] = np.array(
                        [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])], np.float32
                    )
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return np.asarray(merged, np.float32).reshape(-1, 4)

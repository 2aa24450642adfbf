"""Motion gating: a cheap per-frame test that decides whether the detectors need to run (as Frigate does).

The frame is shrunk to a small grey image and compared with a running average of earlier ones; if enough pixels
changed, something moves. Detectors run on frames with motion, on every frame while a track is open (so tracks
are followed to their end), and at least every `refresh_s` seconds (so someone standing still is still found).
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
        changed = float((cv2.absdiff(blurred, self._background) > self.config.pixel_threshold).mean())
        cv2.accumulateWeighted(blurred, self._background, 0.2)
        return changed >= self.config.min_changed

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

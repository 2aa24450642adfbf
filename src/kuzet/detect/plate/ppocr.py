"""Text-region detection with the PP-OCRv4 detector shipped in `rapidocr-onnxruntime`, filtered to plate shapes.

The DB (differentiable binarisation) network gives a per-pixel text probability; regions above the threshold are
grown by the usual "unclip" margin and boxed. Plates are the boxes with a plate's aspect ratio.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.core.accel import ort_options
from kuzet.core.errors import ModelError
from kuzet.core.types import Detections, Image

_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def _model_bytes() -> bytes:
    try:
        return (
            importlib.resources.files("rapidocr_onnxruntime").joinpath("models/ch_PP-OCRv4_det_infer.onnx").read_bytes()
        )
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise ModelError(
            f"the PP-OCR text detector could not be loaded from rapidocr-onnxruntime ({exc})",
            hint="pip install rapidocr-onnxruntime",
        ) from None


class PpOcrPlateDetector:
    """Finds text regions shaped like licence plates (boxes only, no landmarks)."""

    name = "ppocr-plates"

    def __init__(
        self,
        *,
        max_side: int = 960,
        threshold: float = 0.3,
        box_score: float = 0.5,
        min_aspect: float = 1.3,
        max_aspect: float = 8.0,
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        options = ort_options(threads)
        self._session: Any = ort.InferenceSession(
            _model_bytes(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.max_side = max_side
        self.threshold = threshold
        self.box_score = box_score
        self.min_aspect = min_aspect
        self.max_aspect = max_aspect

    def text_probability(self, image: Image) -> tuple[NDArray[np.float32], float]:
        """Per-pixel text probability at the detector's scale, and that scale."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        nh, nw = max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)
        resized = cv2.resize(
            image[:, :, ::-1], (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        blob = ((resized.astype(np.float32) - _MEAN) / _STD).transpose(2, 0, 1)[None]
        (prob,) = self._session.run(None, {"x": np.ascontiguousarray(blob)})
        return np.asarray(prob[0, 0], np.float32), nw / w

    def detect(self, image: Image) -> Detections:
        """Plate-shaped text regions in an RGB image, highest score first."""
        prob, sx = self.text_probability(image)
        sy = prob.shape[0] / image.shape[0]
        mask = (prob > self.threshold).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes, scores = [], []
        for i in range(1, n):
            x, y, w, h, _ = stats[i]
            if h < 3 or w < 6:
                continue
            score = float(prob[y : y + h, x : x + w][mask[y : y + h, x : x + w] > 0].mean())
            if score < self.box_score:
                continue
            # DB's shrunk kernels are grown back by about 1.5 x their short side ("unclip").
            pad = 0.75 * min(w, h)
            x1, y1, x2, y2 = x - pad, y - pad, x + w + pad, y + h + pad
            bw, bh = x2 - x1, y2 - y1
            if not self.min_aspect <= bw / bh <= self.max_aspect:
                continue
            boxes.append([x1 / sx, y1 / sy, x2 / sx, y2 / sy])
            scores.append(score)
        if not boxes:
            return Detections.empty(with_landmarks=False)
        b = np.asarray(boxes, np.float32)
        b[:, 0::2] = np.clip(b[:, 0::2], 0, image.shape[1])
        b[:, 1::2] = np.clip(b[:, 1::2], 0, image.shape[0])
        dets = Detections(boxes=b, scores=np.asarray(scores, np.float32))
        return dets[np.argsort(-dets.scores, kind="stable")]

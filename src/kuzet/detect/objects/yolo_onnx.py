"""A user-supplied YOLO-family ONNX detector (YOLOv5/v7 and YOLOv8/v11 output layouts) on onnxruntime.

kuzet ships no YOLO weights; `model` names a file the user has. The standard layouts are decoded:
- v8/v11: one output (1, 4 + C, N): box centre, size, then C class scores;
- v5/v7: one output (1, N, 5 + C): box centre, size, objectness, then C class scores (multiplied by objectness).
Boxes are in the letterboxed input's pixels and are mapped back to the frame; NMS runs per class.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import YoloOnnxConfig
from kuzet.core.accel import ort_options, ort_providers
from kuzet.core.errors import ModelError
from kuzet.core.geometry import nms
from kuzet.core.types import Detections, Image


class YoloOnnxDetector:
    """Objects of the configured classes from a YOLO ONNX model."""

    name = "yolo-onnx"

    def __init__(self, config: YoloOnnxConfig) -> None:
        import onnxruntime as ort

        self.config = config
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise ModelError(f"YOLO model {path} not found", hint="set object_detector.model to an .onnx file")
        options = ort_options(config.threads)
        try:
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=options, providers=ort_providers(config.device)
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"{path} is not a loadable ONNX model: {exc}") from None
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        dims = inp.shape
        fixed = isinstance(dims[2], int) and isinstance(dims[3], int)
        self.size = (int(dims[2]), int(dims[3])) if fixed else (config.input_size, config.input_size)
        self.names = config.names or _metadata_names(self._session)
        if not self.names:
            raise ModelError(f"{path} does not name its classes", hint="list them in object_detector.names")
        unknown = [c for c in config.classes if c not in self.names]
        if unknown:
            raise ModelError(f"classes {unknown} are not among the model's classes", hint=f"known: {self.names}")
        wanted = config.classes or self.names
        self._wanted = np.array([n in wanted for n in self.names], bool)

    def _letterbox(self, image: Image) -> tuple[NDArray[np.float32], float, tuple[int, int]]:
        h, w = image.shape[:2]
        th, tw = self.size
        r = min(th / h, tw / w)
        nh, nw = round(h * r), round(w * r)
        top, left = (th - nh) // 2, (tw - nw) // 2
        canvas = np.full((th, tw, 3), 114, np.uint8)
        canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None], r, (left, top)

    def detect(self, image: Image) -> Detections:
        """Objects in an RGB frame, best first, labelled with class names."""
        blob, r, (left, top) = self._letterbox(image)
        (out,) = self._session.run(None, {self._input: np.ascontiguousarray(blob)})
        boxes, scores, classes = decode_yolo(np.asarray(out, np.float32), len(self.names), self.config.layout)
        keep = (scores >= self.config.score_threshold) & self._wanted[classes]
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
        if len(boxes) == 0:
            return Detections.empty(with_landmarks=False)
        boxes = (boxes - np.array([left, top, left, top], np.float32)) / r
        h, w = image.shape[:2]
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        # per-class NMS: shift each class's boxes far apart so they never overlap each other
        shifted = boxes + (classes.astype(np.float32) * 10_000.0)[:, None]
        order = nms(shifted, scores, self.config.nms_iou)
        names = np.asarray(self.names)
        return Detections(boxes=boxes[order], scores=scores[order], labels=names[classes[order]])


def decode_yolo(
    out: NDArray[np.float32], num_classes: int, layout: str = "auto"
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.intp]]:
    """Boxes (x1, y1, x2, y2), best class score and class index per candidate, from a raw YOLO output."""
    if out.ndim != 3 or out.shape[0] != 1:
        raise ModelError(f"unexpected YOLO output shape {out.shape}; expected (1, 4+C, N) or (1, N, 5+C)")
    a, b = out.shape[1], out.shape[2]
    if layout == "auto":
        if a == 4 + num_classes and b != 4 + num_classes:
            layout = "v8"
        elif b == 5 + num_classes:
            layout = "v5"
        elif b == 4 + num_classes:
            layout = "v8-transposed"
        else:
            raise ModelError(f"YOLO output {out.shape} does not fit {num_classes} classes in a known layout")
    if layout == "v8":
        rows = out[0].T
    elif layout in ("v5", "v8-transposed"):
        rows = out[0]
    else:
        raise ModelError(f"unknown YOLO layout {layout!r}")
    cls = rows[:, 5 : 5 + num_classes] * rows[:, 4:5] if layout == "v5" else rows[:, 4 : 4 + num_classes]
    classes = cls.argmax(axis=1).astype(np.intp)
    scores = cls[np.arange(len(cls)), classes].astype(np.float32)
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return boxes, scores, classes


def _metadata_names(session: Any) -> list[str]:
    """Class names from Ultralytics-style metadata (`names`: "{0: 'person', ...}"), if present."""
    raw = session.get_modelmeta().custom_metadata_map.get("names")
    if not raw:
        return []
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return []
    if isinstance(parsed, dict):
        return [str(parsed[k]) for k in sorted(parsed)]
    if isinstance(parsed, list):
        return [str(x) for x in parsed]
    return []

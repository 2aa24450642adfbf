"""dlib's HOG face detector, with the 68-point shape predictor reduced to the five landmarks."""

from __future__ import annotations

from typing import Any

import numpy as np

from kuzet.config.models import DlibHogConfig
from kuzet.core.errors import ModelError
from kuzet.core.types import Detections, Image


def load_dlib_model(kind: str) -> str:
    """Path of a model file shipped in `face_recognition_models`.

    Args:
        kind: One of "shape68", "shape5", "resnet".

    """
    import importlib.util
    import os

    # Located without importing the package: its __init__ needs pkg_resources, which newer setuptools dropped.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the face_recognition_models package is not installed",
            hint="pip install face-recognition-models",
        )
    files = {
        "shape68": "shape_predictor_68_face_landmarks.dat",
        "shape5": "shape_predictor_5_face_landmarks.dat",
        "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    }
    path = os.path.join(next(iter(spec.submodule_search_locations)), "models", files[kind])
    if not os.path.isfile(path):
        raise ModelError(f"dlib model file {path} is missing", hint="reinstall face-recognition-models")
    return path


class DlibHogDetector:
    """HOG + linear SVM frontal face detector (dlib), five landmarks from the 68-point predictor."""

    name = "dlib-hog"

    def __init__(self, config: DlibHogConfig | None = None) -> None:
        import dlib

        self.config = config or DlibHogConfig()
        self._detector: Any = dlib.get_frontal_face_detector()
        self._shape: Any = dlib.shape_predictor(load_dlib_model("shape68"))
        self._rect: Any = dlib.rectangle

    def detect(self, image: Image) -> Detections:
        """Faces in an RGB image, best score first."""
        rects, scores, _ = self._detector.run(image, self.config.upsample, self.config.score_threshold)
        if not rects:
            return Detections.empty()
        h, w = image.shape[:2]
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        points = np.empty((len(rects), 5, 2), np.float32)
        for i, rect in enumerate(rects):
            shape = self._shape(image, rect)
            p = np.array([[pt.x, pt.y] for pt in shape.parts()], np.float32)
            points[i] = [p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]]
        dets = Detections(boxes=boxes, scores=np.asarray(scores, np.float32), landmarks=points)
        return dets[np.argsort(-dets.scores, kind="stable")]

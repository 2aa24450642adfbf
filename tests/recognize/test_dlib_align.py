from __future__ import annotations

import importlib.metadata
from pathlib import Path
from types import SimpleNamespace

import dlib
import numpy as np
import pytest

from kuzet.config import KuzetConfig
from kuzet.config.models import DlibResNetConfig
from kuzet.core.errors import ModelError
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.detect.face.dlib_hog import load_dlib_model
from kuzet.ingest import load_image
from kuzet.pipeline.faces import FaceAnalyzer
from kuzet.recognize import FaceEmbedder, build_face_aligner
from kuzet.recognize.align import LandmarkAligner
from kuzet.recognize.dlib_align import DlibShapeAligner
from kuzet.recognize.dlib_resnet import DlibResNetEmbedder, normalise
from kuzet.recognize.gallery import NumpyGallery


@pytest.fixture(scope="module")
def dlib5() -> DlibShapeAligner:
    return DlibShapeAligner()


def test_shape_predictor_in_the_detectors_box(
    faces_dir: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder, dlib5: DlibShapeAligner
) -> None:
    """On real photos: dlib's five points fall inside CenterFace's box, the chip is dlib's 150x150, and the
    descriptor is close to the template alignment's but not the same (different points, different resampling)."""
    files = [*sorted((faces_dir / "lfw_original_10id").rglob("*_0001.jpg"))[:4], faces_dir / "deepface_13id/img1.jpg"]
    sims = []
    for f in files:
        img = load_image(f, max_pixels=10**7)
        dets = centerface.detect(img)[:1]
        assert dets.landmarks is not None and len(dets) == 1
        points = dlib5.shapes(img, dets.boxes)
        assert points.shape == (1, 5, 2)
        x1, y1, x2, y2 = dets.boxes[0]
        assert np.all((points[0, :, 0] > x1) & (points[0, :, 0] < x2) & (points[0, :, 1] > y1) & (points[0, :, 1] < y2))
        chips = dlib5.align(img, dets.boxes, dets.landmarks)
        assert chips.shape == (1, 150, 150, 3) and chips.dtype == np.uint8
        ours = embedder.embed(chips)[0]
        template = embedder.embed(LandmarkAligner().align(img, dets.boxes, dets.landmarks))[0]
        sims.append(float(ours @ template))
    assert min(sims) > 0.95
    assert max(sims) < 0.9999


def test_dlib5_chips_are_dlibs_own(
    faces_dir: Path, centerface: CenterFaceDetector, dlib_embedder: DlibResNetEmbedder, dlib5: DlibShapeAligner
) -> None:
    """Given the same box, the chip gives dlib's own descriptor (its compute_face_descriptor from a 5-point shape)."""
    img = load_image(sorted((faces_dir / "lfw_original_10id").rglob("*_0001.jpg"))[0], max_pixels=10**7)
    dets = centerface.detect(img)[:1]
    assert dets.landmarks is not None
    x1, y1, x2, y2 = (int(v) for v in dets.boxes[0])
    shape = dlib.shape_predictor(load_dlib_model("shape5"))(img, dlib.rectangle(x1, y1, x2, y2))
    model = dlib.face_recognition_model_v1(load_dlib_model("resnet"))
    reference = normalise(np.asarray([model.compute_face_descriptor(img, shape)], np.float32))[0]
    ours = dlib_embedder.embed(dlib5.align(img, dets.boxes, dets.landmarks))[0]
    assert float(ours @ reference) > 0.9999


def test_boxes_outside_the_image_and_no_faces(dlib5: DlibShapeAligner) -> None:
    img = np.full((120, 100, 3), 128, np.uint8)
    boxes = np.array([[-30, -20, 80, 150], [10, 10, 60, 60]], np.float32)
    lms = np.zeros((2, 5, 2), np.float32)
    assert dlib5.align(img, boxes, lms).shape == (2, 150, 150, 3)
    assert dlib5.align(img, boxes[:0], lms[:0]).shape == (0, 150, 150, 3)


def test_config_chooses_the_alignment(centerface: CenterFaceDetector, embedder: FaceEmbedder) -> None:
    assert DlibResNetConfig().alignment == "landmarks"
    assert build_face_aligner(DlibResNetConfig()).name == "landmarks"
    assert build_face_aligner(DlibResNetConfig(alignment="dlib5")).name == "dlib5"
    config = KuzetConfig.model_validate({"face_embedder": {"alignment": "dlib5"}})
    analyzer = FaceAnalyzer(
        detector=centerface,
        embedder=embedder,
        gallery=NumpyGallery(np.zeros((0, 128), np.float32), np.zeros(0, np.intp), []),
        people=[],
        config=config,
    )
    assert analyzer.aligner.name == "dlib5"


def test_missing_distribution_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="not installed") as err:
        load_dlib_model("shape5", distribution="no-such-face-models")
    assert "shape_predictor_5_face_landmarks.dat" in err.value.message
    assert "pip install face-recognition-models" in err.value.hint


def test_missing_model_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.metadata.distribution("face_recognition_models")
    # The distribution lists the file, but it is not on disk (a broken install).
    broken = SimpleNamespace(version=real.version, files=real.files, locate_file=lambda f: tmp_path / str(f))
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: broken)
    with pytest.raises(ModelError, match="is missing") as err:
        load_dlib_model("shape5")
    assert "--force-reinstall" in err.value.hint
    # The distribution does not list it at all.
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: SimpleNamespace(version="0", files=[]))
    with pytest.raises(ModelError, match="not part of the installed"):
        load_dlib_model("shape5")
    with pytest.raises(ModelError):
        DlibShapeAligner()


def test_model_files_come_from_the_installed_distribution() -> None:
    path = Path(load_dlib_model("shape5"))
    assert path.is_file() and path.name == "shape_predictor_5_face_landmarks.dat"
    assert path.parent.parent.name == "face_recognition_models"

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from kuzet.config import KuzetConfig
from kuzet.config.models import SFaceConfig
from kuzet.core.errors import ModelError
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.detect.face.yunet import model_path
from kuzet.eval.pairs import pick_subject
from kuzet.ingest import load_image
from kuzet.recognize import build_face_aligner, build_face_embedder
from kuzet.recognize.align import ARCFACE_SIZE, ARCFACE_TEMPLATE, LandmarkAligner, align_faces, similarity_transforms
from kuzet.recognize.sface import MODEL_NAME, SFaceEmbedder


@pytest.fixture(scope="module")
def sface() -> SFaceEmbedder:
    return SFaceEmbedder()


@pytest.fixture(scope="module")
def lfw_crops(faces_dir: Path, centerface: CenterFaceDetector) -> tuple[np.ndarray, list[str]]:
    """ArcFace crops of 20 LFW photos (2 per person) and their identities."""
    root = faces_dir / "lfw_original_10id"
    with (root / "labels.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["file"].endswith(("_0001.jpg", "_0002.jpg"))]
    aligner = build_face_aligner(SFaceConfig())
    crops, ids = [], []
    for r in rows:
        img = load_image(root / r["file"], max_pixels=10**8)
        dets = centerface.detect(img)
        assert dets.landmarks is not None
        i = pick_subject(dets, img.shape[1], img.shape[0])
        crops.append(aligner.align(img, dets.boxes[i : i + 1], dets.landmarks[i : i + 1])[0])
        ids.append(r["identity"])
    return np.stack(crops), ids


def test_config_selects_sface() -> None:
    config = KuzetConfig.model_validate({"face_embedder": {"type": "sface", "batch_size": 8}})
    assert isinstance(config.face_embedder, SFaceConfig)
    assert config.face_embedder.batch_size == 8
    aligner = build_face_aligner(config.face_embedder)
    assert aligner.size == ARCFACE_SIZE and isinstance(aligner, LandmarkAligner)


def test_descriptors_are_unit_128d_and_batches_change_nothing(lfw_crops: tuple[np.ndarray, list[str]]) -> None:
    crops = lfw_crops[0][:7]
    one = SFaceEmbedder(SFaceConfig(batch_size=1)).embed(crops)
    many = build_face_embedder(SFaceConfig(batch_size=4)).embed(crops)
    assert one.shape == (7, 128) and one.dtype == np.float32
    assert np.allclose(np.linalg.norm(one, axis=1), 1.0, atol=1e-5)
    assert np.abs(one - many).max() < 1e-5
    assert SFaceEmbedder().embed(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 128)


def test_wrong_chip_size_is_refused(sface: SFaceEmbedder) -> None:
    with pytest.raises(ValueError, match="112"):
        sface.embed(np.zeros((1, 150, 150, 3), np.uint8))


def test_missing_model_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="no-such-face-models"):
        SFaceEmbedder(distribution="no-such-face-models")


def test_same_person_scores_far_above_different_people(
    sface: SFaceEmbedder, lfw_crops: tuple[np.ndarray, list[str]]
) -> None:
    crops, ids = lfw_crops
    v = sface.embed(crops)
    sims = v @ v.T
    who = np.array(ids)
    same = (who[:, None] == who[None, :]) & ~np.eye(len(who), dtype=bool)
    different = who[:, None] != who[None, :]
    assert same.sum() == 20
    assert sims[same].mean() > 0.55
    assert sims[different].mean() < 0.2
    assert sims[same].mean() - sims[different].mean() > 0.4


@pytest.mark.skipif(not hasattr(cv2, "FaceRecognizerSF"), reason="this OpenCV has no FaceRecognizerSF")
def test_matches_opencvs_own_sface(sface: SFaceEmbedder, lfw_crops: tuple[np.ndarray, list[str]]) -> None:
    """Same crops, same descriptors as OpenCV's FaceRecognizerSF (which reads BGR and swaps to RGB itself)."""
    crops = lfw_crops[0]
    recognizer = cv2.FaceRecognizerSF.create(model_path(MODEL_NAME), "")
    ours = sface.embed(crops)
    for crop, v in zip(crops, ours, strict=True):
        theirs = recognizer.feature(np.ascontiguousarray(crop[:, :, ::-1])).ravel()
        assert float(v @ theirs) / float(np.linalg.norm(theirs)) >= 0.99
    assert len(crops) == 20


def test_arcface_template_alignment_matches_opencv_align_crop(faces_dir: Path, centerface: CenterFaceDetector) -> None:
    img = load_image(faces_dir / "lfw_original_10id" / "Colin_Powell" / "Colin_Powell_0001.jpg", max_pixels=10**8)
    dets = centerface.detect(img)
    assert dets.landmarks is not None
    ours = align_faces(img, dets.landmarks[:1], size=ARCFACE_SIZE, template=ARCFACE_TEMPLATE)[0]
    assert ours.shape == (112, 112, 3)
    # The landmarks land on the template.
    m = similarity_transforms(dets.landmarks[:1], ARCFACE_TEMPLATE)[0]
    mapped = np.hstack([dets.landmarks[0], np.ones((5, 1), np.float32)]) @ m.T
    assert np.abs(mapped - ARCFACE_TEMPLATE).max() < 6
    if hasattr(cv2, "FaceRecognizerSF"):
        recognizer = cv2.FaceRecognizerSF.create(model_path(MODEL_NAME), "")
        b = dets.boxes[0]
        row = np.array([[b[0], b[1], b[2] - b[0], b[3] - b[1], *dets.landmarks[0].ravel(), 1.0]], np.float32)
        theirs = recognizer.alignCrop(np.ascontiguousarray(img[:, :, ::-1]), row)[:, :, ::-1]
        assert np.abs(theirs.astype(int) - ours.astype(int)).mean() < 1.0


def test_aligner_rejects_a_bad_template() -> None:
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        LandmarkAligner(template=np.zeros((4, 2), np.float32))

"""One contract suite for every FaceDetector backend, plus accuracy checks on real photos."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from kuzet.config import CenterFaceConfig, DlibHogConfig
from kuzet.core.geometry import iou_matrix
from kuzet.detect.face import FACE_DETECTORS, FaceDetector, build_face_detector
from kuzet.ingest import load_image

_cache: dict[str, FaceDetector] = {}


@pytest.fixture(params=sorted(FACE_DETECTORS))
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    kind = str(request.param)
    if kind not in _cache:
        config_cls, _ = FACE_DETECTORS[kind]
        _cache[kind] = build_face_detector(config_cls())
    return _cache[kind]


def test_one_face_with_landmarks_inside_box(detector: FaceDetector, faces_dir: Path) -> None:
    image = load_image(faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png", max_pixels=10**8)
    dets = detector.detect(image)
    assert len(dets) == 1
    assert dets.landmarks is not None
    box, lm = dets.boxes[0], dets.landmarks[0]
    assert (lm[:, 0] >= box[0] - 5).all() and (lm[:, 0] <= box[2] + 5).all()
    assert (lm[:, 1] >= box[1] - 5).all() and (lm[:, 1] <= box[3] + 5).all()
    # Semantics: left eye left of right eye, eyes above nose, nose above mouth.
    assert lm[0, 0] < lm[1, 0]
    assert lm[2, 1] > lm[:2, 1].max()
    assert lm[3:, 1].min() > lm[2, 1]


def test_no_face_in_blank_image(detector: FaceDetector) -> None:
    assert len(detector.detect(np.full((240, 320, 3), 127, np.uint8))) == 0


def test_scores_sorted_and_boxes_inside_image(detector: FaceDetector, faces_dir: Path) -> None:
    image = load_image(faces_dir / "face_recognition_examples" / "obama-1080p.jpg", max_pixels=10**8)
    dets = detector.detect(image)
    assert len(dets) >= 1
    assert np.all(np.diff(dets.scores) <= 0)
    h, w = image.shape[:2]
    assert (dets.boxes[:, [0, 2]] <= w).all() and (dets.boxes[:, [1, 3]] <= h).all()
    assert (dets.boxes >= 0).all()


def _crowd_recall(detector: FaceDetector, crowd: Path) -> tuple[float, int]:
    with (crowd / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    found = total = false_pos = 0
    for name in sorted({r["file"] for r in rows}):
        truth = [r for r in rows if r["file"] == name and r["ignore"] != "1"]
        ignored = [r for r in rows if r["file"] == name and r["ignore"] == "1"]
        gt = np.array(
            [
                [float(r["x"]), float(r["y"]), float(r["x"]) + float(r["w"]), float(r["y"]) + float(r["h"])]
                for r in truth
            ],
            np.float32,
        ).reshape(-1, 4)
        ig = np.array(
            [
                [float(r["x"]), float(r["y"]), float(r["x"]) + float(r["w"]), float(r["y"]) + float(r["h"])]
                for r in ignored
            ],
            np.float32,
        ).reshape(-1, 4)
        dets = detector.detect(load_image(crowd / name, max_pixels=10**8))
        total += len(gt)
        if len(gt):
            found += int((iou_matrix(gt, dets.boxes).max(axis=1, initial=0) >= 0.3).sum())
        hit_gt = iou_matrix(dets.boxes, np.concatenate([gt, ig])).max(axis=1, initial=0) >= 0.3
        false_pos += int((~hit_gt).sum())
    return found / total, false_pos


def test_centerface_recall_on_group_photos(centerface: FaceDetector, data_root: Path) -> None:
    recall, false_pos = _crowd_recall(centerface, data_root / "crowd" / "dlib_voc_faces")
    print(f"CenterFace recall {recall:.3f}, false positives {false_pos}")
    assert recall >= 0.85
    assert false_pos <= 5


def test_detector_registry_builds_each_backend() -> None:
    assert build_face_detector(CenterFaceConfig()).name == "centerface"
    assert build_face_detector(DlibHogConfig()).name == "dlib-hog"


def test_large_photo_is_downscaled_for_detection(centerface: FaceDetector, faces_dir: Path) -> None:
    image = load_image(faces_dir / "deepface_13id" / "img1.jpg", max_pixels=10**8)
    assert max(image.shape) > 1280
    dets = centerface.detect(image)
    assert len(dets) == 1
    assert dets.boxes[0, 2] - dets.boxes[0, 0] > 300  # reported in full-resolution pixels


def test_detection_resolution_follows_min_face(faces_dir: Path) -> None:
    from kuzet.detect.face.centerface import CenterFaceDetector

    img = load_image(faces_dir / "lfw_original_10id" / "Colin_Powell" / "Colin_Powell_0001.jpg", max_pixels=10**8)
    small = CenterFaceDetector(CenterFaceConfig(min_face=60))
    blob, scale = small._blob(img)
    assert scale == pytest.approx(0.25, abs=0.01)
    assert blob.shape[2] * blob.shape[3] < 0.1 * img.shape[0] * img.shape[1]
    full = CenterFaceDetector(CenterFaceConfig(min_face=20)).detect(img)
    quarter = small.detect(img)
    assert len(full) >= 1
    assert len(quarter) >= 1
    assert iou_matrix(full.boxes[:1], quarter.boxes[:1])[0, 0] > 0.6  # the same face, in the image's pixels


def test_reused_buffer_does_not_leak_the_previous_image(faces_dir: Path) -> None:
    """Two images whose blobs have the same padded shape: the second's padding must be zero, not the first image."""
    from kuzet.detect.face.centerface import CenterFaceDetector

    face = load_image(faces_dir / "lfw_original_10id" / "Colin_Powell" / "Colin_Powell_0001.jpg", max_pixels=10**8)
    reused = CenterFaceDetector()
    first, _ = reused._blob(face)  # 250 px at 75% -> 188, padded to 192
    assert first.shape[2:] == (192, 192)
    smaller = np.full((220, 220, 3), 128, np.uint8)  # 165 px, also padded to 192
    blob, _ = reused._blob(smaller)
    assert blob.shape[2:] == (192, 192)
    assert not blob[0, :, 165:, :].any()
    assert not blob[0, :, :, 165:].any()
    assert len(reused.detect(face)) >= 1

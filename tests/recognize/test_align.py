from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.detect.face.dlib_hog import load_dlib_model
from kuzet.ingest import load_image
from kuzet.recognize.align import DLIB_CHIP_TEMPLATE, align_faces, crop_with_margin, similarity_transforms
from kuzet.recognize.dlib_resnet import DlibResNetEmbedder, normalise


@given(st.floats(0.2, 5.0), st.floats(-np.pi, np.pi), st.floats(-300, 300), st.floats(-300, 300))
def test_similarity_transform_recovers_exact_motion(scale: float, angle: float, tx: float, ty: float) -> None:
    c, s = np.cos(angle), np.sin(angle)
    m = np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])
    pts = np.hstack([DLIB_CHIP_TEMPLATE, np.ones((5, 1), np.float32)]) @ m.T
    back = similarity_transforms(pts[None].astype(np.float32), DLIB_CHIP_TEMPLATE)[0]
    mapped = np.hstack([pts, np.ones((5, 1))]) @ back.T
    assert np.allclose(mapped, DLIB_CHIP_TEMPLATE, atol=1e-2)


def test_aligned_chips_give_dlib_descriptors(
    faces_dir: Path, centerface: CenterFaceDetector, dlib_embedder: DlibResNetEmbedder
) -> None:
    """Our chips (CenterFace landmarks + template) describe a face as dlib's own pipeline does."""
    hog = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(load_dlib_model("shape5"))
    model = dlib.face_recognition_model_v1(load_dlib_model("resnet"))
    files = sorted((faces_dir / "lfw_original_10id").rglob("*_0001.jpg"))
    sims = []
    for f in files:
        img = load_image(f, max_pixels=10**8)
        dets = centerface.detect(img)
        rects = hog(img, 1)
        assert len(dets) >= 1 and len(rects) >= 1
        i = int(np.argmax(dets.areas))
        assert dets.landmarks is not None
        ours = dlib_embedder.embed(align_faces(img, dets.landmarks[i : i + 1]))[0]
        r = max(rects, key=lambda r: r.area())
        ref = normalise(np.asarray([model.compute_face_descriptor(img, sp5(img, r))], np.float32))[0]
        sims.append(float(ours @ ref))
    assert len(sims) == 10
    assert np.mean(sims) >= 0.98
    assert min(sims) >= 0.95


def test_large_faces_are_shrunk_without_aliasing(faces_dir: Path, centerface: CenterFaceDetector) -> None:
    img = load_image(faces_dir / "deepface_13id" / "img1.jpg", max_pixels=10**8)
    dets = centerface.detect(img)
    assert dets.landmarks is not None
    chip = align_faces(img, dets.landmarks[:1])[0]
    small = cv2.resize(img, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    chip_small = align_faces(small, dets.landmarks[:1] * 0.25)[0]
    # The same face from a 4x smaller copy gives nearly the same chip.
    assert np.abs(chip.astype(int) - chip_small.astype(int)).mean() < 8


def test_crop_with_margin_clips_to_image() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    crop = crop_with_margin(img, np.array([80, 80, 100, 100], np.float32), margin=0.5)
    assert crop.shape == (30, 30, 3)


def test_embedder_rejects_wrong_chip_shape(dlib_embedder: DlibResNetEmbedder) -> None:
    with pytest.raises(ValueError, match="chips must be"):
        dlib_embedder.embed(np.zeros((1, 100, 100, 3), np.uint8))


def test_embeddings_are_unit_length(dlib_embedder: DlibResNetEmbedder) -> None:
    rng = np.random.default_rng(0)
    out = dlib_embedder.embed(rng.integers(0, 255, (3, 150, 150, 3), dtype=np.uint8))
    assert out.shape == (3, 128) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)

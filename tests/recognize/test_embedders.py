"""The same contract for every registered face embedder, with the aligner its config asks for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.ingest import load_image
from kuzet.recognize import FACE_EMBEDDERS, build_face_aligner, build_face_embedder, face_embedder_config


@pytest.mark.parametrize("kind", sorted(FACE_EMBEDDERS))
def test_embedder_contract(kind: str, faces_dir: Path, centerface: CenterFaceDetector) -> None:
    config = face_embedder_config(kind)
    assert isinstance(config, FACE_EMBEDDERS[kind][0]) and config.type == kind
    embedder, aligner = build_face_embedder(config), build_face_aligner(config)
    assert embedder.name == kind
    photos = sorted((faces_dir / "lfw_original_10id").rglob("*_0001.jpg"))[:3]
    chips = []
    for photo in photos:
        image = load_image(photo, max_pixels=10**8)
        dets = centerface.detect(image)
        assert dets.landmarks is not None
        chips.append(aligner.align(image, dets.boxes[:1], dets.landmarks[:1]))
    batch = np.concatenate(chips)
    assert batch.shape == (3, aligner.size, aligner.size, 3) and batch.dtype == np.uint8
    vectors = embedder.embed(batch)
    assert vectors.shape == (3, embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = np.concatenate([embedder.embed(c) for c in chips])
    assert np.abs(single - vectors).max() < 1e-4
    # Three different people: each descriptor is closest to itself.
    assert (np.argmax(vectors @ vectors.T, axis=1) == np.arange(3)).all()

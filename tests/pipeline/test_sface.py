"""The face pipeline with SFace as the embedder: its own 112x112 crops, its own score scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kuzet.config.models import KuzetConfig
from kuzet.core.types import Identity
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.ingest import load_image, open_source
from kuzet.pipeline.faces import FaceAnalyzer
from kuzet.recognize import build_face_aligner, build_face_embedder
from kuzet.recognize.gallery import NumpyGallery


@pytest.mark.slow
def test_sface_recognises_the_enrolled_person_in_a_real_clip(
    faces_dir: Path, video_dir: Path, centerface: CenterFaceDetector
) -> None:
    # SFace's different-person scores average 0.11 (sd 0.09) on the visible sets: 0.4 is above 3 sd of them.
    config = KuzetConfig.model_validate({"face_embedder": {"type": "sface"}, "recognition": {"threshold": 0.4}})
    embedder, aligner = build_face_embedder(config.face_embedder), build_face_aligner(config.face_embedder)
    photo = load_image(faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png", max_pixels=10**8)
    dets = centerface.detect(photo)
    assert dets.landmarks is not None
    template = embedder.embed(aligner.align(photo, dets.boxes[:1], dets.landmarks[:1]))
    people = [Identity(1, "Lin-Manuel Miranda")]
    gallery = NumpyGallery(template, np.zeros(1, np.intp), people)
    analyzer = FaceAnalyzer(
        detector=centerface, embedder=embedder, gallery=gallery, people=people, config=config, aligner=aligner
    )
    decisions = []
    with open_source(str(video_dir / "short_hamilton_clip.mp4"), fps=5) as source:
        for frame in source:
            decisions += analyzer.process(frame)
    decisions += analyzer.finish()
    assert all(s.chip.shape == (112, 112, 3) for d in decisions for s in d.track.shots)
    matched = [d for d in decisions if d.identity is not None]
    assert matched and all(d.identity is not None and d.identity.name == "Lin-Manuel Miranda" for d in matched)
    assert max(d.score for d in matched) > 0.5

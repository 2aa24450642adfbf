"""A face analyzer for pipeline tests: any detector, the real embedder, an empty gallery."""

from __future__ import annotations

import numpy as np

from kuzet.config.models import KuzetConfig
from kuzet.detect.face.base import FaceDetector
from kuzet.pipeline.faces import FaceAnalyzer
from kuzet.recognize.base import FaceEmbedder
from kuzet.recognize.gallery import NumpyGallery


def make_analyzer(detector: FaceDetector, embedder: FaceEmbedder, config: KuzetConfig | None = None) -> FaceAnalyzer:
    """A face analyzer around `detector`, with an empty gallery."""
    empty = NumpyGallery(np.zeros((0, 128), np.float32), np.zeros((0,), np.intp), [])
    return FaceAnalyzer(
        detector=detector,
        embedder=embedder,
        gallery=empty,
        people=[],
        config=config or KuzetConfig(),
    )

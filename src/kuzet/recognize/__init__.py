"""Face embedders, alignment and gallery search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuzet.config.models import DlibResNetConfig
from kuzet.recognize.base import FaceAligner, FaceEmbedder, GalleryIndex


def _dlib_resnet(config: DlibResNetConfig) -> FaceEmbedder:
    from kuzet.recognize.fast_resnet import OnnxResNetEmbedder, TorchResNetEmbedder, cuda_available

    runtime = config.runtime
    if runtime == "auto":
        runtime = "torch" if config.device != "cpu" and cuda_available() else "onnxruntime"
    if runtime == "torch":
        return TorchResNetEmbedder(config)
    if runtime == "onnxruntime":
        return OnnxResNetEmbedder(config)
    from kuzet.recognize.dlib_resnet import DlibResNetEmbedder

    return DlibResNetEmbedder(config)


FACE_EMBEDDERS: dict[str, tuple[type[Any], Callable[[Any], FaceEmbedder]]] = {
    "dlib-resnet": (DlibResNetConfig, _dlib_resnet),
}
"""Registry: `type` -> (config model, factory)."""


def build_face_embedder(config: DlibResNetConfig) -> FaceEmbedder:
    """The embedder a config asks for."""
    _, factory = FACE_EMBEDDERS[config.type]
    return factory(config)


def build_face_aligner(config: DlibResNetConfig) -> FaceAligner:
    """The alignment an embedder's config asks for (`alignment`)."""
    if config.alignment == "dlib5":
        from kuzet.recognize.dlib_align import DlibShapeAligner

        return DlibShapeAligner()
    from kuzet.recognize.align import LandmarkAligner

    return LandmarkAligner()


__all__ = [
    "FACE_EMBEDDERS",
    "FaceAligner",
    "FaceEmbedder",
    "GalleryIndex",
    "build_face_aligner",
    "build_face_embedder",
]

"""Face embedders, alignment and gallery search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuzet.config.models import DlibResNetConfig, SFaceConfig
from kuzet.core.errors import InputError
from kuzet.recognize.base import FaceAligner, FaceEmbedder, GalleryIndex


def _dlib_resnet(config: DlibResNetConfig) -> FaceEmbedder:
    from kuzet.recognize.fast_resnet import OnnxResNetEmbedder, TorchResNetEmbedder, cuda_available

    runtime = config.runtime
    if runtime == "auto":
        gpu = config.precision != "int8" and config.device != "cpu" and cuda_available()
        runtime = "torch" if gpu else "onnxruntime"
    if config.precision == "int8" and runtime != "onnxruntime":
        from kuzet.core.errors import ModelError

        raise ModelError(
            f"precision: int8 runs on onnxruntime only, but this embedder runs on {runtime}",
            hint="use runtime: onnxruntime, or precision: auto or fp32",
        )
    if runtime == "torch":
        return TorchResNetEmbedder(config)
    if runtime == "onnxruntime":
        return OnnxResNetEmbedder(config)
    from kuzet.recognize.dlib_resnet import DlibResNetEmbedder

    return DlibResNetEmbedder(config)


def _sface(config: SFaceConfig) -> FaceEmbedder:
    from kuzet.recognize.sface import SFaceEmbedder

    return SFaceEmbedder(config)


FACE_EMBEDDERS: dict[str, tuple[type[Any], Callable[[Any], FaceEmbedder]]] = {
    "dlib-resnet": (DlibResNetConfig, _dlib_resnet),
    "sface": (SFaceConfig, _sface),
}
"""Registry: `type` -> (config model, factory)."""


def build_face_embedder(config: DlibResNetConfig | SFaceConfig) -> FaceEmbedder:
    """The embedder a config asks for."""
    _, factory = FACE_EMBEDDERS[config.type]
    return factory(config)


def face_embedder_config(name: str) -> DlibResNetConfig | SFaceConfig:
    """The default config of a registered embedder, by its `type`.

    Raises:
        InputError: No embedder of that name.
    """
    if name not in FACE_EMBEDDERS:
        raise InputError(f"no face embedder {name!r}", hint=f"use one of: {', '.join(FACE_EMBEDDERS)}")
    config: DlibResNetConfig | SFaceConfig = FACE_EMBEDDERS[name][0]()
    return config


def build_face_aligner(config: DlibResNetConfig | SFaceConfig) -> FaceAligner:
    """The alignment an embedder's config asks for (`alignment`), cutting the chips that embedder reads."""
    from kuzet.recognize.align import ARCFACE_SIZE, ARCFACE_TEMPLATE, LandmarkAligner

    if config.type == "sface":
        return LandmarkAligner(template=ARCFACE_TEMPLATE, size=ARCFACE_SIZE)
    if config.alignment == "dlib5":
        from kuzet.recognize.dlib_align import DlibShapeAligner

        return DlibShapeAligner()
    return LandmarkAligner()


__all__ = [
    "FACE_EMBEDDERS",
    "FaceAligner",
    "FaceEmbedder",
    "GalleryIndex",
    "build_face_aligner",
    "build_face_embedder",
    "face_embedder_config",
]

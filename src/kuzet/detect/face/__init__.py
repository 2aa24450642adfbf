"""Face detector backends, chosen by the config's `type`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuzet.config.models import CenterFaceConfig, DlibHogConfig, YuNetConfig
from kuzet.detect.face.base import FaceDetector


def _centerface(config: Any) -> FaceDetector:
    from kuzet.detect.face.centerface import CenterFaceDetector

    return CenterFaceDetector(config)


def _dlib_hog(config: Any) -> FaceDetector:
    from kuzet.detect.face.dlib_hog import DlibHogDetector

    return DlibHogDetector(config)


def _yunet(config: Any) -> FaceDetector:
    from kuzet.detect.face.yunet import YuNetDetector

    return YuNetDetector(config)


FACE_DETECTORS: dict[str, tuple[type[Any], Callable[[Any], FaceDetector]]] = {
    "centerface": (CenterFaceConfig, _centerface),
    "dlib-hog": (DlibHogConfig, _dlib_hog),
    "yunet": (YuNetConfig, _yunet),
}
"""Registry: `type` -> (config model, factory). Heavy imports happen inside the factories."""


def build_face_detector(config: CenterFaceConfig | DlibHogConfig | YuNetConfig) -> FaceDetector:
    """The detector a config asks for."""
    _, factory = FACE_DETECTORS[config.type]
    return factory(config)


__all__ = ["FACE_DETECTORS", "FaceDetector", "build_face_detector"]

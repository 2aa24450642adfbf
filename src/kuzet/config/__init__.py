"""Configuration models and loading."""

from __future__ import annotations

from kuzet.config.loading import explain_validation_error, load_config
from kuzet.config.models import (
    CameraConfig,
    CenterFaceConfig,
    DlibHogConfig,
    DlibResNetConfig,
    IngestConfig,
    KuzetConfig,
    RecognitionConfig,
    TrackerConfig,
)

__all__ = [
    "CameraConfig",
    "CenterFaceConfig",
    "DlibHogConfig",
    "DlibResNetConfig",
    "IngestConfig",
    "KuzetConfig",
    "RecognitionConfig",
    "TrackerConfig",
    "explain_validation_error",
    "load_config",
]

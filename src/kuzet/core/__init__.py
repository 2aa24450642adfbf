"""Core types and errors shared by every stage."""

from __future__ import annotations

from kuzet.core.errors import (
    ConfigError,
    EnrolmentError,
    InputError,
    KuzetError,
    ModelError,
    NotFoundError,
    StoreError,
)
from kuzet.core.types import (
    CHIP_SIZE,
    Detections,
    Event,
    FaceSample,
    FaceTrack,
    Frame,
    Identity,
    Image,
    TrackDecision,
)

__all__ = [
    "CHIP_SIZE",
    "ConfigError",
    "Detections",
    "EnrolmentError",
    "Event",
    "FaceSample",
    "FaceTrack",
    "Frame",
    "Identity",
    "Image",
    "InputError",
    "KuzetError",
    "ModelError",
    "NotFoundError",
    "StoreError",
    "TrackDecision",
]

"""Core types and errors shared by every stage."""

from __future__ import annotations

from kuzet.core.errors import (
    AuthError,
    ConfigError,
    EnrolmentError,
    InputError,
    KuzetError,
    ModelError,
    NotFoundError,
    PermissionDenied,
    PolicyRefusal,
    StoreError,
)
from kuzet.core.types import (
    CHIP_SIZE,
    ROLES,
    Detections,
    Event,
    FaceSample,
    FaceTrack,
    Frame,
    Identity,
    Image,
    TrackDecision,
    User,
)

__all__ = [
    "CHIP_SIZE",
    "ROLES",
    "AuthError",
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
    "PermissionDenied",
    "PolicyRefusal",
    "StoreError",
    "TrackDecision",
    "User",
]

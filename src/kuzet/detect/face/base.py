"""The face detector Protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from kuzet.core.types import Detections, Image


class FaceDetector(Protocol):
    """Finds faces and their five landmarks in an RGB image."""

    name: str

    def detect(self, image: Image) -> Detections:
        """Faces in `image` (RGB, (H, W, 3) uint8), with landmarks, best score first."""
        ...


@runtime_checkable
class FaceSearch(Protocol):
    """A detector that can tell cheaply whether a frame is worth its full pass (CenterFace's `search: yunet`)."""

    @property
    def searches(self) -> bool:
        """Whether `any_face` may say no (else it is always True and not worth asking)."""
        ...

    def any_face(self, image: Image) -> bool:
        """Whether `image` may hold a face: False only when the full pass would most likely find none."""
        ...


@runtime_checkable
class TrackFollower(Protocol):
    """A detector that can look at a video frame only as finely as its open face tracks need (CenterFace)."""

    @property
    def follows(self) -> bool:
        """Whether `detect_following` may be coarser than `detect` (else it is not worth asking)."""
        ...

    def detect_following(self, image: Image, smallest: float) -> Detections | None:
        """Faces of `image` at least as large as a share of `smallest`, the smallest tracked face (pixels).

        None when that would be no cheaper than `detect`.
        """
        ...

"""The types every stage speaks: frames, detections, face samples, tracks, identities and events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

CHIP_SIZE = 150
"""Side of the aligned face chip in pixels (dlib's ResNet input)."""

Image = NDArray[np.uint8]
"""An RGB image, shape (H, W, 3), dtype uint8."""

PictureAt = Callable[[float], "tuple[Image, tuple[int, int]] | None"]
"""A camera's main stream: its picture of an analysed moment (stream time, seconds), RGB uint8 (H, W, 3), and the
analysed frame's width and height; None when it does not hold that moment."""


JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
"""A value that JSON can carry (payloads sent to integrations)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture from a source.

    Attributes:
        image: RGB pixels, shape (H, W, 3), dtype uint8, C-contiguous.
        pts: Presentation time in seconds from the start of the stream (from the stream, not the wall clock).
        index: Position of the frame in the source (0-based, counting every decoded frame).
        still: True when the frame is a still photo: faces in it are not tracked across frames.
        origin: Where the frame came from (a file path or a URL without credentials).

    """

    image: Image
    pts: float
    index: int
    still: bool = False
    origin: str = ""

    def __post_init__(self) -> None:
        img = self.image
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"Frame.image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Detections:
    """Objects found in one frame, as parallel numpy arrays.

    Attributes:
        boxes: Boxes as (x1, y1, x2, y2) in pixels, shape (N, 4), dtype float32.
        scores: Detector confidence, shape (N,), dtype float32.
        landmarks: Five face points (left eye, right eye, nose tip, left and right mouth corner, as seen in
            the image) in pixels, shape (N, 5, 2), dtype float32; None for detectors without landmarks.
        labels: Class names of object detections (e.g. "car", "person"), shape (N,); None for face detectors.

    """

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    landmarks: NDArray[np.float32] | None = None
    labels: NDArray[np.str_] | None = None

    def __post_init__(self) -> None:
        n = self.boxes.shape[0]
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape (N, 4), got {self.boxes.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")
        if self.landmarks is not None and self.landmarks.shape != (n, 5, 2):
            raise ValueError(f"landmarks must have shape ({n}, 5, 2), got {self.landmarks.shape}")
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {self.labels.shape}")
        if n and not np.all(self.boxes[:, 2:] >= self.boxes[:, :2]):
            raise ValueError("boxes must satisfy x2 >= x1 and y2 >= y1")

    @classmethod
    def empty(cls, *, with_landmarks: bool = True) -> Detections:
        """No detections."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32) if with_landmarks else None,
        )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: NDArray[np.bool_] | NDArray[np.intp]) -> Detections:
        """Select detections by a boolean mask or an index array."""
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            landmarks=None if self.landmarks is None else self.landmarks[index],
            labels=None if self.labels is None else self.labels[index],
        )

    def shifted(self, dx: float, dy: float) -> Detections:
        """The same detections moved by (dx, dy) pixels: from a crop's pixels into the frame's."""
        offset = np.array([dx, dy], np.float32)
        return Detections(
            boxes=self.boxes + np.tile(offset, 2),
            scores=self.scores,
            landmarks=None if self.landmarks is None else self.landmarks + offset,
            labels=self.labels,
        )

    @classmethod
    def joined(cls, parts: list[Detections], *, with_landmarks: bool = True) -> Detections:
        """Detections of several crops of one frame (already in its pixels) as one, best score first."""
        if not parts:
            return cls.empty(with_landmarks=with_landmarks)
        landmarks = [p.landmarks for p in parts if p.landmarks is not None]
        labels = [p.labels for p in parts if p.labels is not None]
        both = cls(
            boxes=np.concatenate([p.boxes for p in parts]).astype(np.float32),
            scores=np.concatenate([p.scores for p in parts]).astype(np.float32),
            landmarks=np.concatenate(landmarks) if len(landmarks) == len(parts) else None,
            labels=np.concatenate(labels) if len(labels) == len(parts) else None,
        )
        return both[np.argsort(-both.scores, kind="stable")]

    @property
    def areas(self) -> NDArray[np.float32]:
        """Box areas in square pixels, shape (N,)."""
        wh = self.boxes[:, 2:] - self.boxes[:, :2]
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)


@dataclass(frozen=True, slots=True)
class FaceSample:
    """One good view of a face, kept as a candidate best shot for its track.

    Attributes:
        chip: Aligned face chip, shape (150, 150, 3), RGB uint8.
        crop: The face with some context around it, RGB uint8, for the event snapshot (unredacted).
        box: Face box (x1, y1, x2, y2) in frame pixels, shape (4,), float32.
        quality: Higher is better: size x sharpness x frontal pose, in [0, 1].
        pts: Time of the frame in seconds from the stream start.
        others: Boxes of the other faces of that frame in `crop` pixels, shape (K, 4) float32, to redact.
        crop_box: This face's box in `crop` pixels, shape (4,) float32 (empty when unknown): the one face a stored
            snapshot keeps visible.
        extra: The chips of the fused face models after the first (`face_fusion`), each cut by its own aligner.

    """

    chip: Image
    crop: Image
    box: NDArray[np.float32]
    quality: float
    pts: float
    others: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    crop_box: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    extra: tuple[Image, ...] = ()


@dataclass(slots=True)
class FaceTrack:
    """A face followed across frames of one camera.

    Attributes:
        track_id: Identifier, unique within one analysis of one camera.
        start: Time of the first detection, seconds from the stream start.
        end: Time of the last detection, seconds from the stream start.
        hits: Number of frames in which the face was detected.
        shots: The best samples, best first.

    """

    track_id: int
    start: float
    end: float
    hits: int = 0
    shots: list[FaceSample] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Identity:
    """Someone faces are compared with: an enrolled person, or a watchlist entry.

    Attributes:
        person_id: Database id of the person or of the watchlist entry.
        name: Display name.
        kind: "person" (consented gallery) or "watchlist".
        threshold: Operating threshold for this identity; None uses the configured one.
    """

    person_id: int
    name: str
    kind: str = "person"
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class TrackDecision:
    """The one decision for a finished face track.

    Attributes:
        track: The track the decision is about.
        identity: The matched person, or None for "unknown".
        score: Cosine similarity to the best-matching person, in [-1, 1] (-1 when not compared).
        recognisable: False when the track's best shot was too poor to compare with the gallery.
        descriptors: The face descriptors of the track's shots, (S, D) float32, when they were compared (an alert
            keeps them, encrypted, so that a reviewer can mark its appearance a wrong match of the entry).

    """

    track: FaceTrack
    identity: Identity | None
    score: float
    recognisable: bool = True
    descriptors: NDArray[np.float32] | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A stored match event.

    Attributes:
        event_id: Database id (0 before storing).
        camera: Camera name.
        identity: Name of the matched person.
        person_id: Database id of the matched person.
        score: Cosine similarity of the track to the person, in [-1, 1].
        start: First sighting, seconds from the stream start.
        end: Last sighting, seconds from the stream start.
        track_id: The track within its analysis run.
        snapshot: Path of the best-shot crop (JPEG) under the media folder, or "".
        run_id: The analysis run that produced the event.
        source: Source the event was seen in.
        created_at: When it was stored, ISO 8601 UTC.
        original: Path of the unredacted crop, encrypted, under the media folder (never shown without a grant).

    """

    event_id: int
    camera: str
    identity: str
    person_id: int
    score: float
    start: float
    end: float
    track_id: int
    snapshot: str
    run_id: int
    source: str
    created_at: str
    original: str = ""


ROLES = ("admin", "requester", "approver", "reviewer", "auditor", "operator")
"""Every role a user can hold."""


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in person acting on kuzet."""

    user_id: int
    name: str
    roles: frozenset[str]

    def has(self, *roles: str) -> bool:
        """Whether the user holds any of `roles`."""
        return bool(self.roles.intersection(roles))

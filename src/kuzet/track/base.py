"""The tracker Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from kuzet.core.types import Detections


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    """What one frame did to the tracks.

    Attributes:
        track_ids: Track id of each detection, shape (N,) intp; -1 for detections left untracked.
        finished: Ids of tracks that ended (not seen for too long), oldest first.

    """

    track_ids: NDArray[np.intp]
    finished: list[int]


class Tracker(Protocol):
    """Associates detections across frames of one camera."""

    def update(self, detections: Detections, pts: float) -> TrackerUpdate:
        """Assign the frame's detections to tracks; `pts` is the frame time in seconds."""
        ...

    def flush(self) -> list[int]:
        """End every open track (end of stream) and return their ids."""
        ...

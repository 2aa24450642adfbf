"""Face tracks to decisions: one identity (or "unknown") per track from its best shots."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kuzet.config.models import RecognitionConfig
from kuzet.core.types import FaceTrack, Identity, TrackDecision


def decide_tracks(
    tracks: list[FaceTrack],
    shot_similarities: NDArray[np.float32],
    people: list[Identity],
    config: RecognitionConfig,
) -> list[TrackDecision]:
    """One decision per track from the similarities of its shots to every person.

    A track's score for a person is the mean over its shots of each shot's best similarity to that person's
    templates, so one lucky frame cannot make a match. The best person wins if the score reaches the threshold
    (and leads the runner-up by the margin, if one is set). A watchlist identity uses its purpose's own
    operating threshold.

    Args:
        tracks: Finished tracks; their shots are laid out in order in `shot_similarities`.
        shot_similarities: Cosine similarities, shape (sum of shots, P) float32.
        people: The P enrolled people, in column order.
        config: Threshold and margin.

    """
    decisions = []
    row = 0
    for track in tracks:
        k = len(track.shots)
        sims = shot_similarities[row : row + k]
        row += k
        if k == 0 or sims.shape[1] == 0:
            decisions.append(TrackDecision(track=track, identity=None, score=-1.0))
            continue
        per_person = sims.mean(axis=0)
        order = np.argsort(-per_person, kind="stable")
        best = int(order[0])
        score = float(per_person[best])
        runner_up = float(per_person[order[1]]) if len(order) > 1 else -1.0
        own = people[best].threshold
        threshold = config.threshold if own is None else own
        matched = score >= threshold and score - runner_up >= config.margin
        decisions.append(TrackDecision(track=track, identity=people[best] if matched else None, score=score))
    return decisions

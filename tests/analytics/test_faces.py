from __future__ import annotations

import numpy as np

from kuzet.analytics.faces import decide_tracks
from kuzet.config import RecognitionConfig
from kuzet.core.types import FaceSample, FaceTrack, Identity

PEOPLE = [Identity(1, "ann"), Identity(2, "bob")]


def _track(tid: int, shots: int) -> FaceTrack:
    z = np.zeros((1, 1, 3), np.uint8)
    s = [FaceSample(chip=z, crop=z, box=np.zeros(4, np.float32), quality=1.0, pts=0.0) for _ in range(shots)]
    return FaceTrack(track_id=tid, start=0.0, end=1.0, hits=shots, shots=s)


def test_one_lucky_frame_does_not_make_a_match() -> None:
    tracks = [_track(1, 3)]
    sims = np.array([[0.97, 0.5], [0.85, 0.5], [0.86, 0.5]], np.float32)
    (d,) = decide_tracks(tracks, sims, PEOPLE, RecognitionConfig(threshold=0.92))
    assert d.identity is None
    assert d.score == np.float32(sims[:, 0].mean())


def test_each_track_reads_its_own_rows() -> None:
    tracks = [_track(1, 2), _track(2, 1)]
    sims = np.array([[0.95, 0.1], [0.94, 0.1], [0.1, 0.96]], np.float32)
    d1, d2 = decide_tracks(tracks, sims, PEOPLE, RecognitionConfig(threshold=0.92))
    assert d1.identity == PEOPLE[0]
    assert d2.identity == PEOPLE[1]


def test_margin_refuses_ambiguous_tracks() -> None:
    sims = np.array([[0.95, 0.94]], np.float32)
    (d,) = decide_tracks([_track(1, 1)], sims, PEOPLE, RecognitionConfig(threshold=0.9, margin=0.05))
    assert d.identity is None
    (d,) = decide_tracks([_track(1, 1)], sims, PEOPLE, RecognitionConfig(threshold=0.9, margin=0.0))
    assert d.identity == PEOPLE[0]


def test_empty_gallery_means_unknown() -> None:
    (d,) = decide_tracks([_track(1, 2)], np.zeros((2, 0), np.float32), [], RecognitionConfig())
    assert d.identity is None

"""Frames with open face tracks detected only as finely as the tracked faces need (`tracked_share`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kuzet.config.models import CenterFaceConfig, DlibResNetConfig, KuzetConfig
from kuzet.core.types import Detections, Frame, Image
from kuzet.detect.face.centerface import FOLLOW_MIN_SIDE, CenterFaceDetector
from kuzet.ingest import load_image, open_source
from kuzet.recognize import build_face_aligner
from kuzet.recognize.base import FaceEmbedder
from tests.support.analyzer import make_analyzer


class _Measured(CenterFaceDetector):
    """The real CenterFace, remembering the input size of every model call."""

    def __init__(self, config: CenterFaceConfig) -> None:
        super().__init__(config)
        self.inputs: list[int] = []

    def _detect_small(self, small: Image) -> Detections:
        self.inputs.append(small.shape[0] * small.shape[1])
        return super()._detect_small(small)


def _stage(video_dir: Path, embedder: FaceEmbedder, share: float) -> tuple[_Measured, list[tuple[float, bool]], int]:
    """The stage clip at 10 frames/s: the detector, (start, recognisable) of every track, followed frames."""
    detector = _Measured(CenterFaceConfig(tracked_share=share))
    base = KuzetConfig()
    # moving regions off, so that every pass is either the full one or a followed one (measured: the stage clip's
    # cuts leave none to regions anyway)
    config = base.model_copy(update={"motion_gate": base.motion_gate.model_copy(update={"regions": False})})
    analyzer = make_analyzer(detector, embedder, config)
    decisions = []
    with open_source(str(video_dir / "short_hamilton_clip.mp4"), fps=10) as source:
        for frame in source:
            decisions += analyzer.process(frame)
    decisions += analyzer.finish()
    tracks = sorted((round(d.track.start, 1), d.recognisable) for d in decisions)
    return detector, tracks, analyzer.stats.followed_frames


def test_a_broadcast_is_detected_coarser_with_the_same_recognisable_tracks(
    video_dir: Path, embedder: FaceEmbedder
) -> None:
    full, full_tracks, none_followed = _stage(video_dir, embedder, 0.0)
    coarse, coarse_tracks, followed = _stage(video_dir, embedder, 0.5)
    assert none_followed == 0 and max(full.inputs) == min(full.inputs)  # every pass at the full pass's size
    assert followed > len(coarse.inputs) // 2  # measured 74 of 92: where the tracked faces in sight are large
    assert sum(coarse.inputs) < 0.75 * sum(full.inputs)  # a quarter fewer pixels through the model (measured 37%)
    recognisable = [start for start, ok in full_tracks if ok]
    coarse_recognisable = [start for start, ok in coarse_tracks if ok]
    assert recognisable and len(coarse_recognisable) == len(recognisable)  # the same faces become matchable
    # a new face smaller than `tracked_share` of those in sight is found at the next full pass at the latest
    # (measured: one of the two 0.2 s later)
    refresh = KuzetConfig().motion_gate.refresh_s
    assert all(0 <= c - f <= refresh for f, c in zip(recognisable, coarse_recognisable, strict=True))
    assert len(coarse_tracks) >= len(full_tracks) - 2


def test_the_coarse_pass_finds_large_faces_as_the_full_pass_does(faces_dir: Path, embedder: FaceEmbedder) -> None:
    examples = faces_dir / "face_recognition_examples"
    detector = _Measured(CenterFaceConfig())
    two = load_image(examples / "knn_test_kit_with_rose.jpg", max_pixels=50_000_000)
    full = detector.detect(two)
    both = detector.detect_following(two, _smallest(full))
    assert len(full) == 2 and both is not None and len(both) == 2
    assert detector.detect_following(two, 30) is None  # a 30 px tracked face needs the full pass: the caller runs it
    image = load_image(examples / "knn_test_obama1.jpg", max_pixels=50_000_000)
    detector.inputs.clear()
    full = detector.detect(image)
    side = _smallest(full)
    assert side > 80  # a face large enough to be followed at well under the full scale
    coarse = detector.detect_following(image, side)
    assert detector.inputs[1] < detector.inputs[0] / 4
    assert coarse is not None and len(coarse) == len(full) == 1
    assert full.landmarks is not None and coarse.landmarks is not None
    assert np.linalg.norm(coarse.landmarks - full.landmarks, axis=-1).mean() < 0.06 * side  # measured 3%
    aligner = build_face_aligner(DlibResNetConfig())
    both = np.concatenate([full.boxes, coarse.boxes]), np.concatenate([full.landmarks, coarse.landmarks])
    d = embedder.embed(aligner.align(image, *both))
    assert float(d[0] @ d[1]) / float(np.linalg.norm(d[0]) * np.linalg.norm(d[1])) > 0.97  # measured 0.986
    assert not CenterFaceDetector(CenterFaceConfig(tracked_share=0.0)).follows


def test_followed_frames_come_in_a_few_sizes_never_under_the_floor() -> None:
    """The scale is a step below the full pass's, so several cameras' frames still batch in the shared detector."""
    detector = _Measured(CenterFaceConfig())
    image = np.zeros((720, 1280, 3), np.uint8)
    for smallest in range(60, 700, 7):
        assert detector.detect_following(image, float(smallest)) is not None
    sizes = set(detector.inputs)
    assert 3 <= len(sizes) <= 17  # 92 tracked sizes, a handful of input sizes
    assert min(sizes) >= FOLLOW_MIN_SIDE * FOLLOW_MIN_SIDE * 1280 / 720  # the shorter side at the floor or above


def _smallest(found: Detections) -> float:
    return float(np.minimum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1]).min())


class _Following:
    """A face detector with one fixed face, telling whole passes from coarse ones."""

    name = "following"
    follows = True

    def __init__(self) -> None:
        self.calls: list[str | float] = []
        self.coarser = True

    def _face(self) -> Detections:
        box = np.array([[100, 60, 160, 130]], np.float32)  # 60 px wide, 70 high
        marks = np.array([[[115, 85], [145, 85], [130, 100], [118, 115], [142, 115]]], np.float32)
        return Detections(boxes=box, scores=np.array([0.9], np.float32), landmarks=marks)

    def detect(self, image: Image) -> Detections:
        self.calls.append("whole")
        return self._face()

    def detect_following(self, image: Image, smallest: float) -> Detections | None:
        if not self.coarser:
            return None
        self.calls.append(smallest)
        return self._face()


def test_the_whole_frame_gets_the_full_pass_on_the_refresh_and_the_tracked_size_between(
    embedder: FaceEmbedder,
) -> None:
    detector = _Following()
    analyzer = make_analyzer(detector, embedder)
    image = np.full((240, 320, 3), 90, np.uint8)
    for i in range(12):  # 1.2 s at 10 frames/s of a face standing still: nothing moves, no region to search
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    calls = detector.calls
    assert calls[0] == "whole" and calls[10] == "whole"  # the first frame and the refresh after 1 s
    assert all(abs(float(c) - 60) < 1 for c in calls[1:10] + calls[11:])  # the tracked face's shorter side
    detector.calls.clear()
    analyzer.process(Frame(image=image, pts=0.0, index=0))  # time went back (a new file, a seek): whole again
    assert detector.calls == ["whole"]
    base = KuzetConfig()
    off = base.model_copy(update={"motion_gate": base.motion_gate.model_copy(update={"enabled": False})})
    analyzer = make_analyzer(detector, embedder, off)
    detector.calls.clear()
    for i in range(12):  # without the motion gate: the same whole passes on the refresh, followed between
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    assert detector.calls[0] == "whole" and detector.calls[10] == "whole" and detector.calls.count("whole") == 2
    detector.coarser = False  # the tracked face is too small to go coarser: a full pass, which restarts the refresh
    detector.calls.clear()
    for i in range(12, 15):
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    assert detector.calls == ["whole"] * 3
    detector.coarser = True
    analyzer.process(Frame(image=image, pts=1.5, index=15))
    assert detector.calls[-1] != "whole"  # 0.1 s after the last full pass
    detector.follows = False  # `tracked_share: 0`: never coarse
    analyzer = make_analyzer(detector, embedder, KuzetConfig())
    detector.calls.clear()
    for i in range(5):
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    assert detector.calls == ["whole"] * 5


class _Scripted(_Following):
    """Faces given per call: a large one throughout, a small one until `small_until` (then it turns away)."""

    def __init__(self, small_until: float) -> None:
        super().__init__()
        self.small_until = small_until
        self.pts = 0.0
        self.large = True

    def _face(self) -> Detections:
        boxes = [[100, 60, 160, 130]] if self.large else []  # 60 px wide
        if self.pts <= self.small_until:
            boxes.append([220, 40, 240, 64])  # 20 px wide: too small to go coarser
        marks = [
            [[x1 + 5, y1 + 8], [x2 - 5, y1 + 8], [(x1 + x2) / 2, y1 + 14], [x1 + 6, y2 - 5], [x2 - 6, y2 - 5]]
            for x1, y1, x2, y2 in boxes
        ]
        return Detections(
            boxes=np.array(boxes, np.float32).reshape(-1, 4),
            scores=np.full(len(boxes), 0.9, np.float32),
            landmarks=np.array(marks, np.float32).reshape(-1, 5, 2),
        )

    def detect_following(self, image: Image, smallest: float) -> Detections | None:
        return None if smallest < 40 else super().detect_following(image, smallest)


def test_a_tracked_face_the_full_pass_missed_no_longer_holds_the_frame_at_full_resolution(
    embedder: FaceEmbedder,
) -> None:
    detector = _Scripted(small_until=0.05)
    analyzer = make_analyzer(detector, embedder)
    image = np.full((240, 320, 3), 90, np.uint8)
    for i in range(5):
        detector.pts = i / 10
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    # 0.0: both faces, full pass; 0.1: the small one needs it again, and that pass no longer finds it; from 0.2
    # only the large face, still in sight, sets the scale (the small track stays open for `max_gap_s`)
    assert detector.calls[:2] == ["whole", "whole"]
    assert len(detector.calls) == 5 and all(abs(float(c) - 60) < 1 for c in detector.calls[2:])
    detector = _Scripted(small_until=1.0)
    analyzer = make_analyzer(detector, embedder)
    for i in range(3):  # the small face stays in sight: every frame needs the full pass
        detector.pts = i / 10
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    assert detector.calls == ["whole"] * 3
    detector = _Scripted(small_until=-1.0)  # the large face alone, gone by the refresh's full pass at 1.0 s
    analyzer = make_analyzer(detector, embedder)
    for i in range(12):
        detector.pts, detector.large = i / 10, i < 10
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    assert detector.calls[10] == "whole"
    assert abs(float(detector.calls[11]) - 60) < 1  # no track in sight: the open one counts again (not a full pass)

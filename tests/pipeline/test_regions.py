"""Face detection on the moving regions of a frame: cheaper, and nothing lost against the whole frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kuzet.config.models import CenterFaceConfig, KuzetConfig
from kuzet.core.types import Detections, Frame
from kuzet.detect.face.base import FaceDetector
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.ingest import open_source
from kuzet.pipeline.faces import FaceAnalyzer
from kuzet.recognize.base import FaceEmbedder
from tests.support.analyzer import make_analyzer


def _config(regions: bool) -> KuzetConfig:
    base = KuzetConfig()
    return base.model_copy(update={"motion_gate": base.motion_gate.model_copy(update={"regions": regions})})


def _analyzer(detector: FaceDetector, embedder: FaceEmbedder, *, regions: bool) -> FaceAnalyzer:
    return make_analyzer(detector, embedder, _config(regions))


def test_regions_find_the_same_faces_and_tracks_on_a_real_video(video_dir: Path, embedder: FaceEmbedder) -> None:
    centerface = CenterFaceDetector(CenterFaceConfig(search="whole"))  # regions alone, without YuNet's search
    found = {}
    for regions in (False, True):
        analyzer = _analyzer(centerface, embedder, regions=regions)
        tracks = []
        with open_source(str(video_dir / "one-by-one-person-detection.mp4"), fps=10) as source:
            for frame in source:  # two people walk up to the camera between 68 s and 78 s
                if frame.pts < 62:
                    continue
                tracks += [(d.track.start, d.track.end) for d in analyzer.process(frame)]
                if frame.pts > 80:
                    break
        tracks += [(d.track.start, d.track.end) for d in analyzer.finish()]
        found[regions] = (analyzer.stats.faces, sorted(tracks), analyzer.stats.region_frames)
    faces, tracks, searched = found[True]
    assert searched > 40  # most moving frames were searched in their regions only
    assert found[False][2] == 0
    assert len(tracks) == 2 and faces >= found[False][0] and tracks == found[False][1]  # same people, same tracks


class _Recording:
    """A face detector that remembers what it was shown and finds one face where a test puts it."""

    name = "recording"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []
        self.face: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> Detections:
        self.shapes.append(image.shape[:2])
        if self.face is None or image.shape[:2] != (240, 320):
            return Detections.empty()
        x, y = self.face
        box = np.array([[x, y, x + 40, y + 40]], np.float32)
        marks = np.tile(
            np.array(
                [[x + 10, y + 15], [x + 30, y + 15], [x + 20, y + 22], [x + 12, y + 30], [x + 28, y + 30]], np.float32
            ),
            (1, 1, 1),
        )
        return Detections(boxes=box, scores=np.array([0.9], np.float32), landmarks=marks)


def _frame(i: int) -> np.ndarray:
    img = np.full((240, 320, 3), 100, np.uint8)
    x = 10 + 6 * i
    img[150:200, x : x + 30] = 230  # something walks along the bottom
    return img


def test_the_whole_frame_is_searched_on_the_refresh_and_for_an_open_track_outside_the_regions(
    embedder: FaceEmbedder,
) -> None:
    detector = _Recording()
    analyzer = _analyzer(detector, embedder, regions=True)
    whole = (240, 320)
    for i in range(10):  # 1 s at 10 frames/s: the first frame whole, then only the moving block's region
        analyzer.process(Frame(image=_frame(i), pts=i / 10, index=i))
    assert detector.shapes[0] == whole and all(s != whole for s in detector.shapes[1:10])
    assert analyzer.stats.region_frames == 9
    analyzer.process(Frame(image=_frame(10), pts=1.0, index=10))
    assert detector.shapes[-1] == whole  # the refresh: someone standing still elsewhere is still found
    detector.face = (250, 20)  # a face far from what moves, found by the whole-frame pass below
    analyzer.process(Frame(image=_frame(11), pts=2.0, index=11))
    assert detector.shapes[-1] == whole and analyzer.tracker.predicted(2.1).shape == (1, 4)
    for i in range(12, 16):  # its track is open, outside the moving region: the whole frame every time
        analyzer.process(Frame(image=_frame(i), pts=2.0 + (i - 11) / 10, index=i))
        assert detector.shapes[-1] == whole


def test_detections_of_crops_join_in_the_frames_pixels() -> None:
    a = Detections(
        boxes=np.array([[0, 0, 10, 10]], np.float32), scores=np.array([0.5], np.float32),
        landmarks=np.zeros((1, 5, 2), np.float32),
    )  # fmt: skip
    b = Detections(
        boxes=np.array([[1, 1, 5, 5]], np.float32), scores=np.array([0.9], np.float32),
        landmarks=np.ones((1, 5, 2), np.float32),
    )  # fmt: skip
    joined = Detections.joined([a.shifted(100, 50), b])
    assert joined.boxes.tolist() == [[1, 1, 5, 5], [100, 50, 110, 60]]  # best score first
    assert joined.landmarks is not None and joined.landmarks[1, 0].tolist() == [100, 50]
    assert len(Detections.joined([])) == 0
    with pytest.raises(ValueError):
        Detections(boxes=np.zeros((1, 3), np.float32), scores=np.zeros(1, np.float32))

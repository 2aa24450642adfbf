"""Searching with YuNet first (`face_detector.search: yunet`): CenterFace runs only where a face may be."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kuzet.config.models import CenterFaceConfig, KuzetConfig
from kuzet.core.types import Detections, Frame
from kuzet.detect.face.base import FaceSearch
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.ingest import load_image, open_source
from kuzet.recognize.base import FaceEmbedder
from tests.support.analyzer import make_analyzer


class _Counted(CenterFaceDetector):
    """CenterFace counting its full passes."""

    calls = 0

    def detect(self, image: np.ndarray) -> Detections:
        self.calls += 1
        return super().detect(image)


def test_the_search_finds_the_same_tracks_on_a_real_video_with_fewer_detector_passes(
    video_dir: Path, embedder: FaceEmbedder
) -> None:
    found = {}
    for search in ("whole", "yunet"):
        detector = _Counted(CenterFaceConfig(search=search))
        analyzer = make_analyzer(detector, embedder)
        tracks = []
        with open_source(str(video_dir / "one-by-one-person-detection.mp4"), fps=10) as source:
            for frame in source:  # an empty hall, then two people walk up to the camera between 68 s and 78 s
                if frame.pts < 50:
                    continue
                tracks += [(d.track.start, d.track.end) for d in analyzer.process(frame)]
                if frame.pts > 80:
                    break
        tracks += [(d.track.start, d.track.end) for d in analyzer.finish()]
        found[search] = (analyzer.stats.faces, sorted(tracks), analyzer.stats.searched_frames, detector.calls)
    whole, searched = found["whole"], found["yunet"]
    assert whole[2] == 0 and searched[2] > 50  # YuNet saw no face on most moving frames of the empty hall
    assert searched[3] < whole[3] / 2  # so CenterFace ran less than half as often
    assert len(searched[1]) == len(whole[1]) == 2  # the same two people
    for (s0, e0), (s1, e1) in zip(whole[1], searched[1], strict=True):
        assert abs(s0 - s1) <= 0.3 and abs(e0 - e1) <= 0.3  # found within 3 frames of each other
    assert searched[0] >= whole[0] - 3


def test_any_face_on_real_pictures(faces_dir: Path) -> None:
    searching = CenterFaceDetector(CenterFaceConfig(search="yunet"))
    face = load_image(faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png", max_pixels=10**8)
    wall = np.full((360, 640, 3), 128, np.uint8)
    assert isinstance(searching, FaceSearch)
    assert searching.any_face(face) and not searching.any_face(wall)
    assert CenterFaceDetector(CenterFaceConfig(search="whole")).any_face(wall)  # no search: always worth a pass
    tiny = CenterFaceDetector(CenterFaceConfig(search="yunet", min_face=8))
    assert tiny.any_face(wall) and not tiny.searches  # faces under YuNet's 12 px: CenterFace looks every time
    assert searching.searches and not CenterFaceDetector(CenterFaceConfig(search="whole")).searches


class _Searching:
    """A detector whose cheap search says what the test sets, and which finds one face when asked to detect."""

    name = "searching"
    searches = True

    def __init__(self) -> None:
        self.face = False
        self.detected = 0

    def any_face(self, image: np.ndarray) -> bool:
        return self.face

    def detect(self, image: np.ndarray) -> Detections:
        self.detected += 1
        box = np.array([[100, 100, 160, 160]], np.float32)
        marks = np.array([[[115, 120], [145, 120], [130, 135], [118, 148], [142, 148]]], np.float32)
        return Detections(boxes=box, scores=np.array([0.9], np.float32), landmarks=marks)


def test_the_detector_runs_on_photos_and_while_a_track_is_open_whatever_the_search_says(
    embedder: FaceEmbedder,
) -> None:
    detector = _Searching()
    config = KuzetConfig.model_validate({"motion_gate": {"enabled": False}})
    analyzer = make_analyzer(detector, embedder, config)
    image = np.full((240, 320, 3), 90, np.uint8)
    analyzer.process(Frame(image=image, pts=0.0, index=0, still=True))
    assert detector.detected == 1  # a photo always gets the full pass
    for i in range(3):
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    assert detector.detected == 1 and analyzer.stats.searched_frames == 3
    detector.face = True
    analyzer.process(Frame(image=image, pts=0.3, index=3))  # the search sees a face: a track opens
    detector.face = False
    for i in range(4, 8):  # the search says no face, but the track is open: the detector follows it
        analyzer.process(Frame(image=image, pts=i / 10, index=i))
    assert detector.detected == 6 and analyzer.stats.searched_frames == 3

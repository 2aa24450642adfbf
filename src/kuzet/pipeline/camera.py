"""One camera's frames turned into decisions (faces and traffic), with no database and no files written."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from kuzet.analytics.traffic import Passage, Violation
from kuzet.config.models import CameraConfig, KuzetConfig
from kuzet.core.types import Frame, Image, TrackDecision
from kuzet.detect.face.base import FaceDetector
from kuzet.detect.objects import build_object_detector
from kuzet.detect.plate.formats import PlateText, plate_formats
from kuzet.pipeline.faces import FaceAnalyzer, FaceStats
from kuzet.pipeline.traffic import PlateTrack, TrafficAnalyzer
from kuzet.recognize.base import FaceAligner, FaceEmbedder
from kuzet.recognize.gallery import Gallery

PlateRead = Callable[[Image, NDArray[np.float32]], tuple[PlateText, NDArray[np.float32], Image] | None]


class CameraPipeline:
    """The analytics a camera's config asks for: faces (matched against a gallery) and traffic, frame by frame.

    Faces come out as one decision per finished track; traffic as passages, violations and voted plates, collected
    until `take_traffic` hands them over. A traffic-only camera loads no face model and no gallery.
    """

    def __init__(
        self,
        camera: CameraConfig,
        config: KuzetConfig,
        *,
        detector: Callable[[], FaceDetector],
        embedder: Callable[[], FaceEmbedder],
        gallery: Callable[[], Gallery],
        read_plate: Callable[[list[str]], PlateRead],
        extra: Callable[[], Sequence[tuple[FaceAligner, FaceEmbedder]]] = tuple,
    ) -> None:
        self.camera = camera
        self.frames = 0
        self.traffic: TrafficAnalyzer | None = None
        if "traffic" in camera.analytics:
            self.traffic = TrafficAnalyzer(
                build_object_detector(camera.traffic.object_detector),
                camera.traffic,
                plate_reader=read_plate(camera.traffic.plate_formats),
            )
        self.faces: FaceAnalyzer | None = None
        self.gallery_people = 0
        if "faces" in camera.analytics:
            index = gallery()
            self.gallery_people = len(index.people)
            self.faces = FaceAnalyzer(
                detector=detector(),
                embedder=embedder(),
                gallery=index,
                people=index.people,
                config=config,
                extra=extra(),
            )

    def set_gallery(self, index: Gallery) -> None:
        """Match against another gallery from now on (enrolments, approvals and expiries while a camera runs)."""
        if self.faces is not None:
            self.faces.gallery, self.faces.people = index, index.people
            self.gallery_people = len(index.people)

    @property
    def stats(self) -> FaceStats:
        """Face counts so far (frames only, on a traffic-only camera)."""
        return self.faces.stats if self.faces is not None else FaceStats(frames=self.frames)

    def process(self, frame: Frame) -> list[TrackDecision]:
        """Analyse one frame; returns the face tracks decided with it."""
        self.frames += 1
        decisions = self.faces.process(frame) if self.faces is not None else []
        if self.traffic is not None:
            self.traffic.process(frame)
        return decisions

    def finish(self) -> list[TrackDecision]:
        """End of the source: decide every open track."""
        decisions = self.faces.finish() if self.faces is not None else []
        if self.traffic is not None:
            self.traffic.finish()
        return decisions

    def take_traffic(self) -> tuple[list[PlateTrack], list[Passage], list[Violation]]:
        """What the traffic analyzer finished since the last call (so a long live run holds no history)."""
        traffic = self.traffic
        if traffic is None:
            return [], [], []
        out = (list(traffic.plates), list(traffic.passages), list(traffic.violations))
        traffic.plates.clear()
        traffic.passages.clear()
        traffic.violations.clear()
        return out


__all__ = ["CameraPipeline", "PlateRead", "plate_formats"]

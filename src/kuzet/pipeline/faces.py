"""The face pipeline for one camera: detect -> align -> track -> best shots -> embed once per track -> decide."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from kuzet.analytics.faces import decide_tracks
from kuzet.config.models import KuzetConfig
from kuzet.core.types import Detections, FaceSample, FaceTrack, Frame, Identity, Image, TrackDecision
from kuzet.detect.face.base import FaceDetector, FaceSearch, TrackFollower
from kuzet.ingest.motion import MotionGate
from kuzet.recognize import build_face_aligner
from kuzet.recognize.align import crop_region
from kuzet.recognize.base import FaceAligner, FaceEmbedder, GalleryIndex
from kuzet.track.bestshot import geometric_quality, keep_best, sharpness
from kuzet.track.iou import IoUTracker

SNAPSHOT_MARGIN = 0.6


def rescale_sample(sample: FaceSample, image: Image, *, analysed: tuple[int, int]) -> FaceSample:
    """The same best shot cut from another picture of the same moment (a camera's main stream).

    The boxes (this face, the other faces to redact) are scaled from the analysed frame's size to `image`'s, each
    axis on its own (a 704x576 sub-stream beside a 1920x1080 main stream), and the snapshot crop is cut from `image`
    with the same margin. The chip and quality stay those of the analysis.

    Args:
        sample: A best shot taken on the analysed frame.
        image: The picture to cut from, RGB uint8, shape (H, W, 3).
        analysed: Width and height of the analysed frame, pixels.

    """
    h, w = image.shape[:2]
    scale = np.array([w / analysed[0], h / analysed[1]] * 2, np.float32)
    box = (sample.box * scale).astype(np.float32)
    crop, x0, y0 = crop_region(image, box, margin=SNAPSHOT_MARGIN)
    shift = np.array([x0, y0, x0, y0], np.float32)
    others = np.zeros((0, 4), np.float32)
    if sample.crop_box.size == 4 and len(sample.others):
        # others are in the old crop's pixels: back to the analysed frame, scaled, into the new crop
        old = (sample.box - sample.crop_box).astype(np.float32)
        others = ((sample.others + old) * scale - shift).astype(np.float32)
    return replace(sample, crop=crop, box=box, others=others, crop_box=(box - shift).astype(np.float32))


"""Context kept around a face in its snapshot, as a fraction of the face box on each side."""


@dataclass(slots=True)
class FaceStats:
    """Counts for one analysis run."""

    frames: int = 0
    faces: int = 0
    tracks: int = 0
    matched_tracks: int = 0
    unknown_tracks: int = 0
    low_quality_tracks: int = 0
    dropped_tracks: int = 0
    embedded_shots: int = 0
    gated_frames: int = 0
    """Frames the motion gate let through without running the face detector."""
    region_frames: int = 0
    """Frames the face detector looked at only where they moved (`motion_gate.regions`)."""
    searched_frames: int = 0
    """Frames where the cheap search found no face, so the face detector did not run (`face_detector.search`)."""
    followed_frames: int = 0
    """Frames the face detector looked at only as finely as the open tracks needed (`tracked_share`)."""
    per_identity: dict[str, int] = field(default_factory=dict)


class FaceAnalyzer:
    """Runs the face pipeline frame by frame for one camera and decides each track once, when it ends.

    Recognition runs only on each track's best shots (at most `tracker.best_shots`), batched across every
    track that ends in the same frame, not on every detection.
    """

    def __init__(
        self,
        *,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        gallery: GalleryIndex,
        people: list[Identity],
        config: KuzetConfig,
        aligner: FaceAligner | None = None,
        extra: Sequence[tuple[FaceAligner, FaceEmbedder]] = (),
    ) -> None:
        self.detector = detector
        self.search = detector if isinstance(detector, FaceSearch) and detector.searches else None
        """Asked first on video frames without an open face track (CenterFace's `search: yunet`)."""
        self.follow = detector if isinstance(detector, TrackFollower) and detector.follows else None
        """Looks at frames with open face tracks only as finely as they need (CenterFace's `tracked_share`)."""
        self.embedder = embedder
        self.aligner = aligner or build_face_aligner(config.face_embedder)
        self.extra = list(extra)
        """Fused models after the first (`face_fusion`): shots are cut and embedded by each, side by side."""
        self.recognition = config.recognition.model_copy(
            update={"threshold": config.match_threshold, "margin": config.match_margin}
        )
        """Threshold and margin in the matcher's units (fused ones under `face_fusion`)."""
        self.gallery = gallery
        self.people = people
        self.config = config
        self.tracker = IoUTracker(config.tracker)
        self.gate = MotionGate(config.motion_gate)
        self.stats = FaceStats()
        self._tracks: dict[int, FaceTrack] = {}
        self._last_whole = -np.inf

    def _detect(self, frame: Frame) -> Detections:
        """Faces of a video frame: the whole frame, its moving regions, or the whole frame as coarse as tracks allow.

        The whole frame gets the full pass at least every `refresh_s` (someone standing still, a small face
        arriving). Between, the moving regions are searched when they are enough (`regions`: they cover at most
        `region_max_share` of the frame and hold every open track's expected box, so a track is never lost for
        want of looking), else the whole frame at the scale its open tracks need (`tracked_share`).
        """
        cfg = self.config.motion_gate
        pts = frame.pts
        if frame.still or pts - self._last_whole >= cfg.refresh_s or pts < self._last_whole:
            return self._whole(frame)
        if cfg.enabled and cfg.regions:
            found = self._in_regions(frame)
            if found is not None:
                return found
        return self._following(frame)

    def _in_regions(self, frame: Frame) -> Detections | None:
        """Faces found in the frame's moving regions, or None when those are not enough to look at."""
        regions = self.gate.regions()
        h, w = frame.image.shape[:2]
        share = float(((regions[:, 2] - regions[:, 0]) * (regions[:, 3] - regions[:, 1])).sum()) / (w * h)
        if not len(regions) or share > self.config.motion_gate.region_max_share:
            return None
        tracked = self.tracker.predicted(frame.pts)
        inside = (
            (tracked[:, None, 0] >= regions[None, :, 0])
            & (tracked[:, None, 1] >= regions[None, :, 1])
            & (tracked[:, None, 2] <= regions[None, :, 2])
            & (tracked[:, None, 3] <= regions[None, :, 3])
        ).any(axis=1)
        if not inside.all():
            return None
        parts = []
        for x1, y1, x2, y2 in np.round(regions).astype(int).tolist():
            found = self.detector.detect(np.ascontiguousarray(frame.image[y1:y2, x1:x2]))
            if len(found):
                parts.append(found.shifted(x1, y1))
        self.stats.region_frames += 1
        return Detections.joined(parts)

    def _following(self, frame: Frame) -> Detections:
        """The whole frame, shrunk as far as the smallest tracked face in sight allows (`tracked_share`).

        In sight: the open tracks that the last full pass or a later frame found. A track the full pass missed
        (its face gone, hidden or turned away; a camera cut) no longer holds the whole frame at full resolution
        for the rest of its gap: like a new face, it is found again if it is as large as `tracked_share` of the
        others, else at the next full pass. When no track is in sight, every open track counts.
        """
        tracked = self.tracker.predicted(frame.pts, seen_since=self._last_whole)
        if not len(tracked):
            tracked = self.tracker.predicted(frame.pts)
        if self.follow is None or not len(tracked):
            return self._whole(frame)
        smallest = float(np.minimum(tracked[:, 2] - tracked[:, 0], tracked[:, 3] - tracked[:, 1]).min())
        found = self.follow.detect_following(frame.image, smallest)
        if found is None:  # the tracked faces need the full pass's resolution: it counts as one
            return self._whole(frame)
        self.stats.followed_frames += 1
        return found

    def _whole(self, frame: Frame) -> Detections:
        self._last_whole = frame.pts
        return self.detector.detect(frame.image)

    def process(self, frame: Frame) -> list[TrackDecision]:
        """Analyse one frame; returns decisions for tracks that ended with it."""
        self.stats.frames += 1
        if not self.gate.needed(frame, busy=bool(self._tracks)):
            self.stats.gated_frames += 1
            return []
        searched = not (self._tracks or frame.still) and self.search is not None
        if searched and self.search is not None and not self.search.any_face(frame.image):
            self.stats.searched_frames += 1  # the cheap search found no face: the detector's full pass is skipped
            return []
        dets = self._whole(frame) if searched else self._detect(frame)  # where the search saw a face, maybe still
        self.stats.faces += len(dets)
        update = self.tracker.update(dets, frame.pts)
        ended = list(update.finished)
        if len(dets):
            assert dets.landmarks is not None
            limit = self.config.tracker.best_shots
            bound = geometric_quality(dets.boxes, dets.landmarks)  # quality if perfectly sharp
            tracks: list[FaceTrack | None] = []
            for i, tid in enumerate(update.track_ids.tolist()):
                track = None
                if tid >= 0:
                    track = self._tracks.get(tid)
                    if track is None:
                        track = FaceTrack(track_id=tid, start=frame.pts, end=frame.pts)
                        self._tracks[tid] = track
                    track.end = frame.pts
                    track.hits += 1
                    if len(track.shots) >= limit and bound[i] <= track.shots[-1].quality:
                        track = None  # cannot become a best shot: not worth aligning
                tracks.append(track)
            wanted = np.array([t is not None for t in tracks], bool)
            if not wanted.any():
                return self._end_frame(frame, ended)
            chips = np.zeros((len(dets), self.aligner.size, self.aligner.size, 3), np.uint8)
            chips[wanted] = self.aligner.align(frame.image, dets.boxes[wanted], dets.landmarks[wanted])
            quality = np.zeros(len(dets), np.float32)
            quality[wanted] = bound[wanted] * sharpness(chips[wanted])
            for i, track in enumerate(tracks):
                if track is None:
                    continue
                if len(track.shots) < limit or quality[i] > track.shots[-1].quality:
                    crop, x0, y0 = crop_region(frame.image, dets.boxes[i], margin=SNAPSHOT_MARGIN)
                    # Other faces in the frame, in crop pixels: a stored snapshot shows only its subject.
                    others = np.delete(dets.boxes, i, axis=0) - np.array([x0, y0, x0, y0], np.float32)
                    extra = tuple(
                        a.align(frame.image, dets.boxes[i : i + 1], dets.landmarks[i : i + 1])[0] for a, _ in self.extra
                    )
                    sample = FaceSample(
                        chip=chips[i].copy(),
                        extra=extra,
                        crop=crop,
                        box=dets.boxes[i].copy(),
                        quality=float(quality[i]),
                        pts=frame.pts,
                        others=others.astype(np.float32),
                        crop_box=(dets.boxes[i] - np.array([x0, y0, x0, y0], np.float32)).astype(np.float32),
                    )
                    keep_best(track.shots, sample, limit=limit)
        return self._end_frame(frame, ended)

    def _end_frame(self, frame: Frame, ended: list[int]) -> list[TrackDecision]:
        if frame.still:
            # Faces in different photos are different sightings: end every track with the photo.
            ended += self.tracker.flush()
        return self._decide(ended, still=frame.still)

    def finish(self) -> list[TrackDecision]:
        """End of stream: decide every open track."""
        return self._decide(self.tracker.flush(), still=False)

    def _decide(self, ended: list[int], *, still: bool) -> list[TrackDecision]:
        tracks = []
        for tid in ended:
            track = self._tracks.pop(tid, None)
            if track is None:
                continue
            if not still and track.hits < self.config.tracker.min_hits:
                self.stats.dropped_tracks += 1
                continue
            tracks.append(track)
        if not tracks:
            return []
        min_quality = self.config.recognition.min_quality
        good = [t for t in tracks if t.shots and t.shots[0].quality >= min_quality]
        poor = [t for t in tracks if not (t.shots and t.shots[0].quality >= min_quality)]
        decisions = [TrackDecision(track=t, identity=None, score=-1.0, recognisable=False) for t in poor]
        self.stats.low_quality_tracks += len(poor)
        if good:
            chips = np.stack([shot.chip for t in good for shot in t.shots])
            self.stats.embedded_shots += chips.shape[0]
            descriptors = self.embedder.embed(chips)
            if self.extra:
                parts = [
                    e.embed(np.stack([shot.extra[k] for t in good for shot in t.shots]))
                    for k, (_, e) in enumerate(self.extra)
                ]
                descriptors = np.concatenate([descriptors, *parts], axis=1)
            persons, sims = self.gallery.search(descriptors)
            candidates = [self.people[i] for i in persons]
            made = decide_tracks(good, sims, candidates, self.recognition)
            starts = np.cumsum([0] + [len(t.shots) for t in good])
            decisions += [replace(d, descriptors=descriptors[starts[i] : starts[i + 1]]) for i, d in enumerate(made)]
        for d in decisions:
            self.stats.tracks += 1
            if d.identity is None:
                self.stats.unknown_tracks += 1
            else:
                self.stats.matched_tracks += 1
                name = d.identity.name
                self.stats.per_identity[name] = self.stats.per_identity.get(name, 0) + 1
        return decisions

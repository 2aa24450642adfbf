"""The one place that wires services together: data directory, config, models, store and pipelines."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import EnrolmentError, InputError, KuzetError, StoreError
from kuzet.core.types import Event, Frame, Identity, TrackDecision
from kuzet.detect.face import FaceDetector, build_face_detector
from kuzet.ingest.images import load_image
from kuzet.ingest.sources import open_source
from kuzet.recognize import FaceEmbedder, build_face_embedder
from kuzet.recognize.align import align_faces
from kuzet.runtime.faces import FaceAnalyzer, FaceStats
from kuzet.store.db import Database
from kuzet.store.media import MediaStore
from kuzet.store.repositories import (
    EventRepository,
    GalleryRepository,
    NewEvent,
    NewTemplate,
    PersonSummary,
    RunRecord,
)

ENV_HOME = "KUZET_HOME"


def resolve_data_dir(explicit: Path | None) -> Path:
    """The data directory: `--data-dir`, else $KUZET_HOME, else the user's data folder."""
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("kuzet", appauthor=False))


@dataclass(frozen=True, slots=True)
class EnrolResult:
    """What `enroll` did."""

    identity: Identity
    added: int
    skipped_duplicates: int


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What `analyze` found and stored."""

    run_id: int
    source: str
    camera: str
    events: list[Event]
    stats: FaceStats
    seconds: float


class Kuzet:
    """kuzet's services over one data directory; every CLI command and API route goes through here.

    All state lives under `data_dir`: `kuzet.db` (SQLite), `media/`, and later `keys/`. Two instances with
    different data directories share nothing.
    """

    def __init__(self, data_dir: Path, config: KuzetConfig | None = None) -> None:
        self.data_dir = data_dir
        self.config = config or KuzetConfig()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "media").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {data_dir}: {exc.strerror}",
                hint="choose a writable folder with --data-dir or KUZET_HOME",
            ) from None
        self.db = Database(f"sqlite:///{data_dir / 'kuzet.db'}")
        self.db.migrate()
        self.media = MediaStore(data_dir / "media")

    def close(self) -> None:
        """Release the database."""
        self.db.dispose()

    @cached_property
    def face_detector(self) -> FaceDetector:
        """The configured face detector (loaded on first use)."""
        return build_face_detector(self.config.face_detector)

    @cached_property
    def face_embedder(self) -> FaceEmbedder:
        """The configured face embedder (loaded on first use)."""
        return build_face_embedder(self.config.face_embedder)

    # -- enrolment ---------------------------------------------------------------------------------------

    def enroll(self, name: str, photos: list[Path]) -> EnrolResult:
        """Enrol a person from photos that each show exactly one face.

        Every photo is checked before anything is stored: one bad photo refuses the whole enrolment.

        Raises:
            EnrolmentError: A photo is unreadable, shows no face or more than one face, or the name is invalid.

        """
        name = name.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise EnrolmentError(f"invalid name {name!r}", hint="give 1-200 printable characters")
        if not photos:
            raise EnrolmentError("no photos given", hint="give one or more photos of the person")
        chips = []
        hashes = []
        for photo in photos:
            try:
                image = load_image(photo, max_pixels=self.config.ingest.max_pixels)
            except InputError as exc:
                raise EnrolmentError(f"cannot enrol from {photo}: {exc.message}", hint=exc.hint) from None
            dets = self.face_detector.detect(image)
            if len(dets) == 0:
                raise EnrolmentError(
                    f"no face found in {photo}",
                    hint="use a clear, frontal photo where the face is at least 40 px",
                )
            if len(dets) > 1:
                raise EnrolmentError(
                    f"{len(dets)} faces found in {photo}; an enrolment photo must show one person only",
                    hint="crop the photo to the person being enrolled",
                )
            assert dets.landmarks is not None
            chips.append(align_faces(image, dets.landmarks)[0])
            hashes.append(hashlib.sha256(photo.read_bytes()).hexdigest())
        import numpy as np

        vectors = self.face_embedder.embed(np.stack(chips))
        templates = [NewTemplate(vector=v, photo_sha256=h) for v, h in zip(vectors, hashes, strict=True)]
        with self.db.session() as s:
            identity, added = GalleryRepository(s).add_templates(name, templates, model=self.face_embedder.name)
        return EnrolResult(identity=identity, added=added, skipped_duplicates=len(templates) - added)

    def people(self) -> list[PersonSummary]:
        """Everyone enrolled."""
        with self.db.session() as s:
            return GalleryRepository(s).people()

    # -- analysis ----------------------------------------------------------------------------------------

    def analyze(
        self,
        source: str,
        *,
        camera: str = "default",
        fps: float | None = None,
        on_start: Callable[[int | None], None] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> AnalysisResult:
        """Run the face pipeline over a source and store one event per track that matches someone.

        Events and the run's counts are committed together at the end; if decoding fails part-way, nothing
        from the run is stored and any snapshots written are removed.

        Args:
            source: File, folder or URL.
            camera: Camera name recorded on the events.
            fps: Frames analysed per second (video); None analyses every frame.
            on_start: Called once with the expected number of frames (None when unknown).
            on_frame: Called after each analysed frame (for progress bars).

        """
        started = datetime.now(UTC)
        with self.db.session() as s:
            gallery = GalleryRepository(s).load(model=self.face_embedder.name)
        analyzer = FaceAnalyzer(
            detector=self.face_detector,
            embedder=self.face_embedder,
            gallery=gallery,
            people=gallery.people,
            config=self.config,
        )
        written: list[str] = []
        new_events: list[NewEvent] = []

        def keep(decisions: list[TrackDecision]) -> None:
            for d in decisions:
                if d.identity is None:
                    continue  # unknown faces are counted by the analyzer, never stored
                best = d.track.shots[0]
                rel = self.media.save_jpeg(best.crop)
                written.append(rel)
                new_events.append(
                    NewEvent(
                        person_id=d.identity.person_id,
                        identity=d.identity.name,
                        score=round(d.score, 4),
                        start=round(d.track.start, 3),
                        end=round(d.track.end, 3),
                        track_id=d.track.track_id,
                        snapshot=rel,
                    )
                )

        try:
            with open_source(source, fps=fps, config=self.config.ingest) as frames:
                if on_start is not None:
                    on_start(frames.expected_frames)
                name = frames.name
                for frame in frames:
                    keep(analyzer.process(frame))
                    if on_frame is not None:
                        on_frame(frame)
                keep(analyzer.finish())
            stats = analyzer.stats
            run = RunRecord(
                camera=camera,
                source=name,
                started_at=started,
                frames=stats.frames,
                faces=stats.faces,
                tracks=stats.tracks,
                matched_tracks=stats.matched_tracks,
                unknown_tracks=stats.unknown_tracks,
            )
            with self.db.session() as s:
                run_id, events = EventRepository(s).save_run(run, new_events)
        except (KuzetError, KeyboardInterrupt, OSError):
            for rel in written:
                self.media.delete(rel)
            raise
        seconds = (datetime.now(UTC) - started).total_seconds()
        return AnalysisResult(run_id=run_id, source=name, camera=camera, events=events, stats=stats, seconds=seconds)

    def events(self, *, camera: str | None = None, identity: str | None = None, limit: int = 1000) -> list[Event]:
        """Stored events, newest first."""
        with self.db.session() as s:
            return EventRepository(s).list(camera=camera, identity=identity, limit=limit)

    def event_dict(self, event: Event) -> dict[str, object]:
        """An event as the JSON object the CLI and API return."""
        return {
            "id": event.event_id,
            "camera": event.camera,
            "identity": event.identity,
            "score": event.score,
            "start": event.start,
            "end": event.end,
            "track_id": event.track_id,
            "snapshot": str(self.media.path(event.snapshot)) if event.snapshot else "",
            "run_id": event.run_id,
            "source": event.source,
            "created_at": event.created_at,
        }

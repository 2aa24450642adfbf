"""Running a camera's analytics over a source, and storing what it decided (events, alerts, traffic)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kuzet.analytics.traffic import Passage, Violation, counting_lines_summary
from kuzet.audit.ledger import Details
from kuzet.config.cameras import checked_camera_name
from kuzet.config.models import CameraConfig
from kuzet.core.errors import KuzetError
from kuzet.core.types import Event, FaceSample, Frame, Image, TrackDecision, User
from kuzet.detect.plate.formats import PlateText, plate_formats
from kuzet.governance.redaction import expand, obscure
from kuzet.governance.review import NewAlert
from kuzet.ingest.sources import open_source
from kuzet.pipeline.camera import CameraPipeline, PlateRead
from kuzet.pipeline.faces import FaceStats
from kuzet.pipeline.traffic import PlateTrack, TrafficStats
from kuzet.services.context import ServiceContext
from kuzet.services.gallery import GalleryService
from kuzet.services.retention import RetentionService
from kuzet.services.session import AnalysisSession
from kuzet.services.uow import AuditedUnitOfWork, Work
from kuzet.services.watchlists import WatchlistService
from kuzet.store.media import encode_jpeg
from kuzet.store.repositories.traffic import StoredViolation


@dataclass(frozen=True, slots=True)
class TrafficResult:
    """What a traffic camera's analysis counted and found."""

    stats: TrafficStats
    passages: list[Passage]
    violations: list[StoredViolation]
    per_line: dict[str, dict[str, int]]
    calibration_note: str | None


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What `analyze` found and stored."""

    run_id: int
    source: str
    camera: str
    events: list[Event]
    alert_ids: list[int]
    stats: FaceStats
    seconds: float
    traffic: TrafficResult | None = None


class AnalysisService:
    """A camera's analytics over a file, a folder or a stream, and the storing of its decisions."""

    def __init__(
        self,
        ctx: ServiceContext,
        uow: AuditedUnitOfWork,
        gallery: GalleryService,
        watchlists: WatchlistService,
        retention: RetentionService | None = None,
    ) -> None:
        self.ctx = ctx
        self.uow = uow
        self.gallery = gallery
        self.watchlists = watchlists
        self.retention = retention

    def analyze(
        self,
        actor: User,
        source: str,
        *,
        camera: str = "default",
        fps: float | None = None,
        on_start: Callable[[int | None], None] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> AnalysisResult:
        """Run a camera's analytics over a source: gallery matches become events, watchlist hits alerts.

        A watchlist hit is a candidate alert waiting for reviewers, never a fact. Everything from the run is
        committed together at the end with its audit entries; if decoding fails part-way, nothing is stored and
        any snapshots written are removed. (`kuzet run` commits live cameras as they go instead.)

        Args:
            actor: The signed-in operator.
            source: File, folder or URL.
            camera: Camera name recorded on the events.
            fps: Frames analysed per second (video); None analyses every frame.
            on_start: Called once with the expected number of frames (None when unknown).
            on_frame: Called after each analysed frame (for progress bars).
        """
        self.uow.require(actor, "analysis.run")
        checked_camera_name(camera)
        if self.retention is not None:
            self.retention.maybe_purge()  # retention runs on its own schedule, not when someone remembers
        session = AnalysisSession(self, actor, camera=camera, source=source)
        try:
            with open_source(source, fps=fps, config=self.ctx.config.ingest) as frames:
                if on_start is not None:
                    on_start(frames.expected_frames)
                session.source = frames.name
                for frame in frames:
                    session.process(frame)
                    if on_frame is not None:
                        on_frame(frame)
                session.finish()
            stored = session.commit()
        except (KuzetError, KeyboardInterrupt, OSError):
            session.discard()
            raise
        return AnalysisResult(
            run_id=stored.run_id,
            source=session.source,
            camera=camera,
            events=stored.events,
            alert_ids=[a.id for a in stored.alerts],
            stats=session.stats,
            seconds=(self.ctx.now() - session.started).total_seconds(),
            traffic=self._traffic_result(session, stored.passages, stored.violations),
        )

    @staticmethod
    def _traffic_result(
        session: AnalysisSession, passages: list[Passage], violations: list[StoredViolation]
    ) -> TrafficResult | None:
        if session.traffic is None:
            return None
        cam = session.camera_config
        cal = cam.traffic.calibration
        return TrafficResult(
            stats=session.traffic.stats,
            passages=passages,
            violations=violations,
            per_line=counting_lines_summary(cam.traffic.lines, passages),
            calibration_note=(cal.note or "4-point ground calibration") if cal is not None else None,
        )

    def pipeline(self, camera: CameraConfig) -> CameraPipeline:
        """The camera's pipeline, with models and its gallery loaded only for what it runs."""
        models = self.ctx.models
        return CameraPipeline(
            camera,
            self.ctx.config,
            detector=lambda: models.face_detector,
            embedder=lambda: models.face_embedder,
            gallery=lambda: self.gallery.load(camera.name),
            extra=lambda: models.face_extra,
            read_plate=self._plate_reading,
        )

    def _plate_reading(self, regions: list[str]) -> PlateRead:
        formats = plate_formats(regions)

        def read(image: Image, box: NDArray[np.float32]) -> tuple[PlateText, NDArray[np.float32], Image] | None:
            h, w = image.shape[:2]
            x1, y1, x2, y2 = expand(box[None, :], 0.1, w, h)[0].tolist()
            crop = np.ascontiguousarray(image[y1:y2, x1:x2])
            if crop.shape[0] < 16 or crop.shape[1] < 16:
                return None
            found = self.ctx.models.plate_reader.read(crop, formats, enlarge=False)  # a vehicle, not a plate crop
            if found is None:
                return None
            pb = found.box + np.array([x1, y1, x1, y1], np.float32)
            bx1, by1, bx2, by2 = (int(v) for v in pb.tolist())
            return found.plate, pb, np.ascontiguousarray(image[by1 : max(by2, by1 + 1), bx1 : max(bx2, bx1 + 1)])

        return read

    def snapshot(self, shot: FaceSample) -> tuple[str, str]:
        """Store a best shot twice: redacted in the clear, the original encrypted.

        Every other face and every plate is hidden: the redaction runs its own recall-first search on the crop,
        besides hiding the faces the analysis saw.
        """
        ctx = self.ctx
        keep = shot.crop_box if shot.crop_box.size == 4 else None
        crop = ctx.models.redactor.redact_image(shot.crop, keep=keep).image
        h, w = crop.shape[:2]
        obscure(crop, expand(shot.others, ctx.config.redaction.expand, w, h))
        redacted = ctx.media.save_jpeg(crop)
        original = ctx.media.save_encrypted(encode_jpeg(shot.crop), cipher=ctx.cipher)
        return redacted, original

    def face_alert(self, d: TrackDecision, written: list[str], *, shots: list[FaceSample] | None = None) -> NewAlert:
        """A watchlist hit as a candidate alert, its best shots stored (paths added to `written`).

        `shots`: the best shots to store instead of the track's (the same shots cut from a camera's main stream).
        """
        assert d.identity is not None
        stored = [self.snapshot(shot) for shot in (d.track.shots if shots is None else shots)]
        paths, originals = [r for r, _ in stored], [o for _, o in stored]
        written.extend(paths + originals)
        category = self.watchlists.entry_category(d.identity.person_id)
        threshold = d.identity.threshold
        return NewAlert(
            entry_id=d.identity.person_id,
            score=round(d.score, 4),
            threshold=float(threshold if threshold is not None else self.ctx.config.match_threshold),
            start=round(d.track.start, 3),
            end=round(d.track.end, 3),
            track_id=d.track.track_id,
            snapshots=paths,
            originals=originals,
            required_reviews=category.required_reviews if category else 2,
            descriptors=d.descriptors,
        )

    def plate_hits(self, plates: list[PlateTrack], written: list[str]) -> list[NewAlert]:
        """Vehicles whose voted plate is on an approved, unexpired plate watchlist: candidate alerts for review."""
        if not plates:
            return []
        watched = self.watchlists.active_plates()
        media, cipher = self.ctx.media, self.ctx.cipher
        alerts = []
        for pt in plates:
            entry = watched.get(pt.plate.text)
            if entry is None:
                continue
            snapshots, originals = [], []
            if pt.crop is not None and pt.crop.size:
                snapshots.append(media.save_jpeg(pt.crop))
                originals.append(media.save_encrypted(encode_jpeg(pt.crop), cipher=cipher))
                written.extend(snapshots + originals)
            category = self.watchlists.entry_category(entry.person_id)
            alerts.append(
                NewAlert(
                    entry_id=entry.person_id,
                    score=round(pt.plate.score, 4),
                    threshold=1.0,
                    start=round(pt.start, 3),
                    end=round(pt.end, 3),
                    track_id=pt.track_id,
                    snapshots=snapshots,
                    originals=originals,
                    required_reviews=category.required_reviews if category else 2,
                )
            )
        return alerts

    def store_traffic(
        self,
        w: Work,
        actor: User,
        run_id: int,
        camera: str,
        passages: list[Passage],
        evidence: list[tuple[Violation, str, str]],
        plates_read: int,
    ) -> list[StoredViolation]:
        """Passages and violations of one run, each violation's evidence hash in the ledger."""
        now = self.ctx.now()
        w.traffic.add_passages(run_id, camera, passages, now=now)
        stored = []
        for v, rel_dir, digest in evidence:
            sv = w.traffic.add_violation(run_id, camera, v, evidence=rel_dir, digest=digest, now=now)
            details = {"kind": v.kind, "camera": camera, "evidence": rel_dir, "evidence_sha256": digest}
            w.audit(actor, "violation.recorded", object=f"violation:{sv.id}", details=details)
            stored.append(sv)
        summary: Details = {
            "camera": camera,
            "passages": len(passages),
            "violations": len(stored),
            "plates_read": plates_read,
        }
        w.audit(actor, "traffic.run", object=f"run:{run_id}", details=summary)
        return stored

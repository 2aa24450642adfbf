"""One camera's analysis over one source: the pipeline's decisions kept, their media written, then committed.

`AnalysisService.analyze` commits once at the end (all or nothing); a live camera worker commits whenever something
was decided, so a crash loses at most the decisions of the moment. Every commit is one audited transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kuzet.analytics.traffic import Passage, Violation
from kuzet.audit.ledger import Details
from kuzet.core.types import Event, FaceSample, Frame, PictureAt, TrackDecision, User
from kuzet.governance.review import NewAlert
from kuzet.pipeline.faces import FaceStats, rescale_sample
from kuzet.pipeline.traffic import TrafficAnalyzer, sharper_plate_track, sharper_violation
from kuzet.recognize.gallery import FusedGallery, NumpyGallery
from kuzet.services import views
from kuzet.services.uow import Work
from kuzet.store.evidence import write_evidence
from kuzet.store.repositories.events import NewEvent, RunRecord
from kuzet.store.repositories.traffic import StoredViolation

if TYPE_CHECKING:
    from kuzet.services.analysis import AnalysisService


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """A candidate alert as stored (what integrations may say about it: no name until people confirm it)."""

    id: int
    score: float
    start: float
    end: float
    required_reviews: int


@dataclass(frozen=True, slots=True)
class Committed:
    """What one commit of an analysis session stored."""

    run_id: int
    events: list[Event]
    alerts: list[StoredAlert]
    passages: list[Passage]
    violations: list[StoredViolation]
    spans: list[tuple[float, float]]
    """Stream-time spans (seconds) of everything stored: what event-triggered recording keeps."""


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A commit attempt: its key, and how many of each pending list it tried to store."""

    key: str
    events: int
    alerts: int
    passages: int
    evidence: int
    files: int
    """Media files written for those decisions (the first of `_written`)."""


class AnalysisSession:
    """One camera's analytics over one source: frames in, decisions collected, stored by `commit`."""

    def __init__(self, svc: AnalysisService, actor: User, *, camera: str, source: str, live: bool = False) -> None:
        self.svc = svc
        self.actor = actor
        self.camera = camera
        self.source = source
        self.live = live
        self.started = svc.ctx.now()
        self.camera_config = svc.ctx.camera_config(camera)
        # read before the gallery is loaded: a change made in between is applied again later (harmlessly)
        self._gallery_seen = svc.gallery.change_head() if live and "faces" in self.camera_config.analytics else 0
        self.pipeline = svc.pipeline(self.camera_config)
        self.expired_hits = 0
        self.suppressed_hits = 0
        """Watchlist hits not alerted: the appearance was marked a wrong match of the entry by a reviewer."""
        self.withdrawn_hits = 0
        self.run_id: int | None = None
        self._attempt: _Attempt | None = None
        """The last commit attempt, while its outcome is unknown."""
        self._settled_spans: list[tuple[float, float]] = []
        self.announce = False
        """Whether commits write their notices to the outbox (a live camera with MQTT or webhooks configured)."""
        self._written: list[str] = []  # files of decisions not yet committed
        self._events: list[NewEvent] = []
        self._alerts: list[NewAlert] = []
        self._passages: list[Passage] = []
        self._evidence: list[tuple[Violation, str, str]] = []
        self.main_picture: PictureAt | None = None
        """Set by a live camera with a main stream: its picture of an analysed moment, where snapshots, plate crops
        and violation evidence are cut from (else from the analysed frame)."""

    @property
    def traffic(self) -> TrafficAnalyzer | None:
        """The traffic analyzer, on a traffic camera."""
        return self.pipeline.traffic

    @property
    def gallery_people(self) -> int:
        """People and watchlist entries the faces are matched against."""
        return self.pipeline.gallery_people

    @property
    def frames(self) -> int:
        """Frames analysed so far."""
        return self.pipeline.frames

    def reload_gallery(self) -> None:
        """Load the whole gallery again (the safety net behind `refresh_gallery`)."""
        if self.pipeline.faces is not None:
            seen = self.svc.gallery.change_head()
            self.pipeline.set_gallery(self.svc.gallery.load(self.camera))
            self._gallery_seen = seen

    def refresh_gallery(self) -> bool:
        """Apply what changed since the last look to the gallery, reading only that; whether anything changed.

        Approvals, rejections, expiries, erasures of enrolments and watchlist entries come from the change feed.
        """
        faces = self.pipeline.faces
        if faces is None or not isinstance(faces.gallery, NumpyGallery | FusedGallery):
            return False
        got = self.svc.gallery.updated(self.camera, faces.gallery, self._gallery_seen)
        if got is None:
            return False
        gallery, self._gallery_seen = got
        self.pipeline.set_gallery(gallery)
        return True

    @property
    def stats(self) -> FaceStats:
        """Face counts so far (frames only, on a traffic-only camera)."""
        return self.pipeline.stats

    @property
    def pending(self) -> bool:
        """Whether decisions wait to be committed."""
        return bool(self._events or self._alerts or self._passages or self._evidence)

    def process(self, frame: Frame) -> None:
        """Analyse one frame."""
        self._keep(self.pipeline.process(frame))
        self._collect_traffic()

    def finish(self) -> None:
        """End of the source: decide every open track."""
        self._keep(self.pipeline.finish())
        self._collect_traffic()

    def _keep(self, decisions: list[TrackDecision]) -> None:
        svc = self.svc
        for d in decisions:
            if d.identity is None:
                continue  # unknown faces are counted by the analyzer, never stored
            if d.identity.kind == "watchlist":
                if not svc.watchlists.entry_active(d.identity.person_id):
                    self.expired_hits += 1  # expired or withdrawn since the gallery was loaded: no alert
                    continue
                if svc.watchlists.wrong_match(self.actor, d, camera=self.camera):
                    self.suppressed_hits += 1  # the look reviewers marked a wrong match of this entry (ledgered)
                    continue
                alert = svc.face_alert(d, self._written, shots=self._shots(d.track.shots))
                self._alerts.append(alert)
                continue
            if not svc.gallery.person_active(d.identity.person_id, self.camera):
                self.withdrawn_hits += 1  # rejected, expired or rescoped since the gallery was loaded: unknown
                continue
            rel, original = svc.snapshot(self._shots(d.track.shots[:1])[0])
            self._written.extend([rel, original])
            self._events.append(
                NewEvent(
                    person_id=d.identity.person_id,
                    identity=d.identity.name,
                    score=round(d.score, 4),
                    start=round(d.track.start, 3),
                    end=round(d.track.end, 3),
                    track_id=d.track.track_id,
                    snapshot=rel,
                    original=original,
                )
            )

    def _shots(self, shots: list[FaceSample]) -> list[FaceSample]:
        """The best shots to store: from the main stream where the camera has one and it holds the moment."""
        if self.main_picture is None:
            return shots
        sharper = []
        for shot in shots:
            got = self.main_picture(shot.pts)
            sharper.append(shot if got is None else rescale_sample(shot, got[0], analysed=got[1]))
        return sharper

    def _collect_traffic(self) -> None:
        """Move what the traffic analyzer finished into this session (so a long live run holds no history)."""
        plates, passages, violations = self.pipeline.take_traffic()
        if self.main_picture is not None:  # plate crops and evidence from the main stream where it holds the moment
            plates = [sharper_plate_track(p, self.main_picture) for p in plates]
            violations = [sharper_violation(v, self.main_picture) for v in violations]
        if plates:
            self._alerts.extend(self.svc.plate_hits(plates, self._written))
        self._passages.extend(passages)
        ctx = self.svc.ctx
        for v in violations:
            rel_dir, digest, files = write_evidence(
                v,
                media_root=ctx.media.root,
                camera=self.camera,
                source=self.source,
                recorded_at=ctx.now(),
                calibration=self.camera_config.traffic.calibration,
                redactor=ctx.models.redactor,
            )
            self._written.extend(files)
            self._evidence.append((v, rel_dir, digest))

    def discard(self) -> None:
        """Remove the files of uncommitted decisions (the analysis failed).

        The files of an attempt whose outcome is unknown stay: its decisions may be stored and point at them.
        """
        keep = self._attempt.files if self._attempt is not None else 0
        for rel in self._written[keep:]:
            self.svc.ctx.media.delete(rel)
        self._written.clear()

    def commit(self) -> Committed:
        """Store every pending decision and the run's counters in one audited transaction.

        Each attempt carries a key stored on the run. When an attempt fails in a way that leaves its outcome unknown
        (the connection lost during the commit), the next attempt looks for that key first: if the earlier attempt
        did commit, what it stored is not stored again; only decisions made since are.
        """
        with self.svc.uow.tx() as w:
            if self._attempt is not None:
                self._settle(w, self._attempt)
            new_events, new_alerts, passages, evidence = self._events, self._alerts, self._passages, self._evidence
            first = self.run_id is None
            key = uuid.uuid4().hex
            self._attempt = _Attempt(
                key, len(new_events), len(new_alerts), len(passages), len(evidence), len(self._written)
            )
            run_id, events, alert_ids = self._store_decisions(w, new_events, new_alerts, first=first, key=key)
            violations: list[StoredViolation] = []
            if self.traffic is not None and (first or passages or evidence):
                violations = self.svc.store_traffic(
                    w, self.actor, run_id, self.camera, passages, evidence, self.traffic.stats.plates_read
                )
            spans = [(e.start, e.end) for e in events] + [(a.start, a.end) for a in new_alerts]
            spans += [(p.pts, p.pts) for p in passages] + [(v.at, v.at) for v in violations]
            spans += self._settled_spans  # stored by an attempt whose answer was lost: their recordings are kept too
            stored_alerts = [
                StoredAlert(i, a.score, a.start, a.end, a.required_reviews)
                for i, a in zip(alert_ids, new_alerts, strict=True)
            ]
            stored = Committed(run_id, events, stored_alerts, passages, violations, spans)
            if self.announce:  # in the same transaction: a crash after the commit delivers later, never not at all
                now = self.svc.ctx.now()
                for kind, payload in views.notices(stored):
                    w.outbox.add(kind, self.camera, payload, now=now)
        self.run_id = run_id
        self._attempt = None
        self._settled_spans = []
        self._events, self._alerts, self._passages, self._evidence = [], [], [], []
        self._written.clear()
        return stored

    def _settle(self, w: Work, attempt: _Attempt) -> None:
        """If the last failed attempt did commit, take what it stored off the pending decisions."""
        run_id = w.events.run_of_commit(attempt.key)
        if run_id is None:
            return  # it rolled back: everything is still to be stored
        self.run_id = run_id
        stored_events, self._events = self._events[: attempt.events], self._events[attempt.events :]
        stored_alerts, self._alerts = self._alerts[: attempt.alerts], self._alerts[attempt.alerts :]
        stored_passages, self._passages = self._passages[: attempt.passages], self._passages[attempt.passages :]
        stored_evidence, self._evidence = self._evidence[: attempt.evidence], self._evidence[attempt.evidence :]
        self._written = self._written[attempt.files :]  # the stored decisions' files are theirs now
        spans = [(e.start, e.end) for e in stored_events] + [(a.start, a.end) for a in stored_alerts]
        spans += [(p.pts, p.pts) for p in stored_passages] + [(v.pts, v.pts) for v, _, _ in stored_evidence]
        self._settled_spans = spans

    def _store_decisions(
        self, w: Work, new_events: list[NewEvent], new_alerts: list[NewAlert], *, first: bool, key: str
    ) -> tuple[int, list[Event], list[int]]:
        stats, now, camera = self.stats, self.svc.ctx.now(), self.camera
        run = RunRecord(
            camera=camera,
            source=self.source,
            started_at=self.started,
            frames=stats.frames,
            faces=stats.faces,
            tracks=stats.tracks,
            matched_tracks=stats.matched_tracks,
            unknown_tracks=stats.unknown_tracks,
        )
        run_id, events = w.events.save_run(run, new_events, now=now, run_id=self.run_id, commit_key=key)
        alert_ids = [w.alerts.add(a, run_id=run_id, camera=camera, source=self.source, now=now) for a in new_alerts]
        ctx = self.svc.ctx
        for alert_id, a in zip(alert_ids, new_alerts, strict=True):
            if a.descriptors is not None and len(a.descriptors):
                model = ctx.config.face_matcher  # descriptors of every fused model side by side
                w.alerts.keep_appearance(alert_id, a.entry_id, a.descriptors, model=model, cipher=ctx.cipher)
        if first or self.pending:
            # A live run's later commits that only refresh its counters are not actions on anyone's data.
            details: Details = {
                "camera": camera,
                "source": self.source,
                "frames": stats.frames,
                "tracks": stats.tracks,
                "events": len(events),
                "alerts": len(alert_ids),
                "unknown_tracks": stats.unknown_tracks,
                "gallery_people": self.gallery_people,
            }
            w.audit(
                self.actor, "analysis.live" if self.live else "analysis.run", object=f"run:{run_id}", details=details
            )
        for alert_id, a in zip(alert_ids, new_alerts, strict=True):
            facts: Details = {"entry": a.entry_id, "score": a.score, "threshold": a.threshold, "camera": camera}
            w.audit(self.actor, "alert.created", object=f"alert:{alert_id}", details=facts)
        return run_id, events, alert_ids

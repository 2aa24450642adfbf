"""A live camera's commit whose answer was lost (the connection dropped during COMMIT) is not stored twice.

The first attempt really commits on the real database; only its answer is replaced by the error a lost connection
gives. The worker retries, as it does after any failed commit, with more decisions made meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import StoreError
from kuzet.ingest.sources import open_source
from kuzet.services.container import Services, build_services
from kuzet.services.session import AnalysisSession
from kuzet.services.uow import Work
from tests.conftest import PASSWORD
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store
CONFIG = {"cameras": [{"name": "stage", "source": "rtsp://127.0.0.1:1/stage", "purpose": "staff at the stage door"}]}


def _stage_camera(tmp_path: Path, faces_dir: Path) -> tuple[Services, AnalysisSession]:
    """Services with Lin-Manuel enrolled and approved, and a live session of the stage camera."""
    svc = build_services(tmp_path / "data", KuzetConfig.model_validate(CONFIG))
    admin = svc.users.init_admin("admin", PASSWORD)
    op = svc.users.add(admin, "op", PASSWORD, ["operator"])
    ap = svc.users.add(admin, "ap", PASSWORD, ["approver"])
    lin = faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png"
    person = svc.gallery.enroll(op, "Lin-Manuel Miranda", [lin], consent="form 7")
    svc.gallery.approve(ap, person.identity.person_id, reason="consent form checked")
    return svc, AnalysisSession(svc.analysis, admin, camera="stage", source="clip", live=True)


def _answer_lost(real_tx: Callable[[], AbstractContextManager[Work]]) -> Callable[[], AbstractContextManager[Work]]:
    """Transactions that commit, then report the error a connection lost during COMMIT gives."""

    @contextmanager
    def tx() -> Iterator[Work]:
        with real_tx() as w:
            yield w
        raise StoreError("the database at ... cannot be reached: server closed the connection unexpectedly")

    return tx


def test_a_retried_commit_that_had_committed_stores_nothing_twice(
    tmp_path: Path, faces_dir: Path, video_dir: Path
) -> None:
    svc, session = _stage_camera(tmp_path, faces_dir)
    try:
        with open_source(str(video_dir / "short_hamilton_clip.mp4"), fps=10) as frames:
            frames_list = list(frames)
        half = len(frames_list) // 2
        for frame in frames_list[:half]:
            session.process(frame)
        session.finish()  # the tracks so far end: their decisions are pending
        first_batch = len(session._events)
        assert first_batch >= 1

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(svc.uow, "tx", _answer_lost(svc.uow.tx))
            with pytest.raises(StoreError, match="cannot be reached"):
                session.commit()  # committed, but the worker only saw the error

        for frame in frames_list[half:]:  # the camera goes on deciding meanwhile
            session.process(frame)
        session.finish()
        later = len(session._events) - first_batch
        stored = session.commit()  # the retry
        assert len(stored.events) == later  # only what came after the lost answer
        assert len(stored.spans) == first_batch + later  # recordings around the first batch are kept too
        with raw_db(tmp_path / "data", read_only=True) as db:
            events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            runs = db.execute("SELECT COUNT(*) FROM analysis_runs").fetchone()[0]
            live = db.execute("SELECT COUNT(*) FROM audit_entries WHERE action = 'analysis.live'").fetchone()[0]
        assert events == first_batch + later  # every decision stored, none twice
        assert runs == 1  # the retry found the run its first attempt created
        assert live == 2  # one ledger entry per commit that stored decisions
        with raw_db(tmp_path / "data", read_only=True) as db:
            snapshots = [r[0] for r in db.execute("SELECT snapshot FROM events")]
        assert all(svc.ctx.media.path(rel).is_file() for rel in snapshots)  # no stored event lost its picture
        assert svc.audit.verify(None).ok
    finally:
        svc.close()


def test_discarding_after_an_unknown_outcome_keeps_the_files_stored_decisions_may_point_at(
    tmp_path: Path, faces_dir: Path, video_dir: Path
) -> None:
    svc, session = _stage_camera(tmp_path, faces_dir)
    try:
        with open_source(str(video_dir / "short_hamilton_clip.mp4"), fps=10) as frames:
            for frame in frames:
                session.process(frame)
        session.finish()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(svc.uow, "tx", _answer_lost(svc.uow.tx))
            with pytest.raises(StoreError):
                session.commit()
        session.discard()  # the worker gives up (the database seemed gone)
        with raw_db(tmp_path / "data", read_only=True) as db:
            snapshots = [r[0] for r in db.execute("SELECT snapshot FROM events")]
        assert snapshots and all(svc.ctx.media.path(rel).is_file() for rel in snapshots)
    finally:
        svc.close()

"""Subject access and erasure: what kuzet holds about the person in a photo, and erasing what may be erased."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kuzet.core.types import User
from kuzet.governance.retention import PurgeReport
from kuzet.recognize.gallery import FusedGallery
from kuzet.services import views
from kuzet.services.context import ServiceContext
from kuzet.services.gallery import GalleryService
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.store.repositories.retention import erase_person

Match = tuple[int, str, float]
"""(id, name, similarity)"""


class SubjectService:
    """Searches and erasures for data subjects (admins and auditors, with a written justification)."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork, gallery: GalleryService) -> None:
        self.ctx = ctx
        self.uow = uow
        self.gallery = gallery

    def _justified(self, actor: User, action: str, justification: str, example: str) -> None:
        what = "a subject search" if action == "search" else "an erasure"
        reason = f"{what} needs a written justification"
        hint = f"e.g. --justification '{example}'"
        self.uow.justified(
            actor, f"subject.{action}_refused", justification, object="subject", reason=reason, hint=hint
        )

    def matches(self, photo: Path) -> tuple[list[Match], list[Match]]:
        """People and watchlist entries (any status) whose templates match the face in `photo`.

        Scored as cameras score (fused with `face_fusion`), each against its own threshold: the configured one
        for people, the category's for watchlist entries. Under fusion, someone lacking the second model's templates
        is matched by the first model's cosine against `recognition.threshold`, so that no one is missed.
        """
        ctx = self.ctx
        # a person asking is never turned away for a poor photo
        vectors, _, _ = self.gallery.face_template(photo, check_quality=False, purpose="search")
        query = np.concatenate([vectors[m] for m in ctx.config.face_models])[None, :].astype(np.float32)
        index = self.gallery.everyone()
        people: list[Match] = []
        matched_entries: list[Match] = []
        if not index.people:
            return people, matched_entries
        sims = index.person_similarities(query)[0]
        threshold = np.array(
            [ctx.config.match_threshold if p.threshold is None else p.threshold for p in index.people], np.float32
        )
        hit = sims >= threshold
        if isinstance(index, FusedGallery):
            # Someone stored before fusion (or whose photo re-embedding failed) has no template of the second model
            # and no fused score worth the name: a person asking is still found, by the first model's own cosine.
            first = index.parts[0]
            cosine = first.person_similarities(index.split(query)[0])[0]
            partial = ~index.complete() & (cosine >= ctx.config.recognition.threshold)
            sims = np.where(partial, cosine, sims)
            hit |= partial
        for i in np.flatnonzero(hit).tolist():
            p = index.people[i]
            (matched_entries if p.kind == "watchlist" else people).append((p.person_id, p.name, float(sims[i])))
        return people, matched_entries

    def search(self, actor: User, photo: Path, *, justification: str) -> dict[str, object]:
        """What kuzet holds about the person in `photo`: gallery records, events, watchlist entries, alerts, media."""
        self.uow.require(actor, "subject.search")
        self._justified(actor, "search", justification, "access request 2026-17")
        people, entries = self.matches(photo)
        entry_ids = [e[0] for e in entries]
        with self.uow.read() as r:
            held = r.subjects.holdings([p[0] for p in people], entry_ids)
        report = views.subject_report(people, held)
        details = {
            "people": len(people),
            "events": len(held.events),
            "entries": len(entry_ids),
            "alerts": len(held.alerts),
        }
        self.uow.record(actor, "subject.search", justification=justification.strip(), details=details)
        return report

    def erase(self, actor: User, photo: Path, *, justification: str) -> dict[str, object]:
        """Erase the consented-gallery data of the person in `photo` (person, templates, events, media).

        Exceptions the policy allows are kept and reported: anything under legal hold, and watchlist entries (they
        rest on a legal basis and end by rejection or expiry).
        """
        self.uow.require(actor, "subject.erase")
        self._justified(actor, "erase", justification, "erasure request 2026-18")
        people, entries = self.matches(photo)
        erased_people = erased_events = 0
        kept: list[str] = [f"watchlist entry {e[0]}: lawful basis, ends by rejection or expiry" for e in entries]
        report = PurgeReport()
        with self.uow.tx() as w:
            for person_id, _, _ in people:
                events, person_gone, held = erase_person(w.session, self.ctx.media, person_id, report)
                erased_events += events
                erased_people += int(person_gone)
                kept += held
            details = {"people": erased_people, "events": erased_events, "files": report.files, "kept": len(kept)}
            w.audit(actor, "subject.erase", justification=justification.strip(), details=details)
        return {
            "people_erased": erased_people,
            "events_erased": erased_events,
            "files_deleted": report.files,
            "kept": kept,
        }

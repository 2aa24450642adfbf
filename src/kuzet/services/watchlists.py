"""Watchlist entries: requested with a legal basis, approved by someone else, destroyed on rejection or expiry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from kuzet.audit.ledger import Details
from kuzet.core.errors import InputError, NotFoundError
from kuzet.core.i18n import Phrase
from kuzet.core.types import Identity, TrackDecision, User
from kuzet.detect.plate.formats import clean as clean_plate
from kuzet.governance import watchlists as wl
from kuzet.governance.approval import APPROVED, PENDING, REJECTED, STATUSES, checked_status
from kuzet.governance.policy import CategoryPolicy
from kuzet.services.context import ServiceContext
from kuzet.services.gallery import GalleryService, four_eyes
from kuzet.services.uow import AuditedUnitOfWork, Refused, Work
from kuzet.store.media import encode_jpeg


class WatchlistService:
    """Requests, four-eyes decisions, expiry, and what cameras match against."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork, gallery: GalleryService) -> None:
        self.ctx = ctx
        self.uow = uow
        self.gallery = gallery

    def expire(self) -> list[int]:
        """Expire every entry past its expiry: it stops matching and its template and photo are destroyed."""
        now = self.ctx.now()
        with self.uow.read() as r:
            if not r.watchlists.due_for_expiry(now):
                return []
        with self.uow.tx() as w:
            expired = w.watchlists.expire_due(now)
            for entry_id, destroyed, photo, expires_at in expired:
                if photo:
                    self.ctx.media.delete(photo)
                details: Details = {"templates_destroyed": destroyed, "expired_at": expires_at.isoformat()}
                w.audit(None, "watchlist.expired", object=f"watchlist:{entry_id}", details=details)
        return [e[0] for e in expired]

    def request(
        self, actor: User, req: wl.WatchlistRequest, photo: Path | None = None, *, plate: str | None = None
    ) -> int:
        """File a watchlist request; it matches nothing until a different user approves it.

        A face category needs `photo` (one face); a plate category (e.g. stolen-vehicle) needs `plate`.

        Raises:
            PolicyRefusal: A prohibited category or label, a missing legal basis, an expiry beyond the maximum, or
                the same request still pending from the same requester; the refusal is audited.
        """
        self.uow.require(actor, "watchlist.request")
        kind = "plate" if plate is not None else "face"
        refusal = wl.check_request(req, self.ctx.policy, today=self.ctx.now().date(), kind=kind)
        if refusal is not None:
            raise self.uow.refuse(
                actor,
                "watchlist.refused",
                object=f"watchlist-request:{req.list_name[: wl.MAX_LENGTHS['list_name']]}",
                reason=refusal.reason,
                hint="watchlists may only hold lawful, allowed categories; see docs/governance.md",
            )
        self._not_pending(actor, req, kind, photo, plate)  # before the model's pass over the photo
        templates, rel, sha = self._template(req, photo, plate)
        try:
            with self.uow.tx() as w:
                entry_id = self._file(w, actor, req, templates, photo=rel, sha=sha, kind=kind)
        except BaseException as exc:
            if rel:
                self.ctx.media.delete(rel)
            if isinstance(exc, Refused):
                obj = f"watchlist-request:{req.list_name}"
                raise self.uow.refuse(
                    actor, "watchlist.refused", object=obj, reason=exc.reason, hint=exc.hint
                ) from None
            raise
        return entry_id

    def _not_pending(
        self, actor: User, req: wl.WatchlistRequest, kind: str, photo: Path | None, plate: str | None
    ) -> None:
        """Refuse (audited) a request whose exact copy is pending already, before any photo is described.

        A cheap look by the photo's or plate's sha256; the check inside `_file`'s transaction stays the one that
        counts (two identical requests at once).
        """
        if plate is not None and photo is None:
            sha = hashlib.sha256(clean_plate(plate).encode()).hexdigest()
        elif photo is not None and photo.is_file():
            with photo.open("rb") as f:
                sha = hashlib.file_digest(f, "sha256").hexdigest()
        else:
            return  # `_template` says what is wrong with it
        with self.uow.read() as r:
            pending = r.watchlists.pending_same(req, requester_id=actor.user_id, kind=kind, sha=sha, now=self.ctx.now())
        if pending is not None:
            refused = _pending_refusal(pending)
            obj = f"watchlist-request:{req.list_name}"
            raise self.uow.refuse(actor, "watchlist.refused", object=obj, reason=refused.reason, hint=refused.hint)

    def _file(
        self, w: Work, actor: User, req: wl.WatchlistRequest, templates: dict[str, bytes], *, photo: str, sha: str,
        kind: str,
    ) -> int:  # fmt: skip
        """Store a request as a pending entry and ledger it; `Refused` when the same request is pending already."""
        now = self.ctx.now()
        pending = w.watchlists.pending_same(req, requester_id=actor.user_id, kind=kind, sha=sha, now=now)
        if pending is not None:  # a second copy would ask approvers to decide the same thing twice
            raise _pending_refusal(pending)
        (model, template), *others = templates.items()
        entry_id = w.watchlists.add(
            req, requester_id=actor.user_id, template=template, model=model, photo=photo, sha=sha,
            cipher=self.ctx.cipher, now=now, kind=kind, extra=dict(others),
        )  # fmt: skip
        details: Details = {
            "list": req.list_name,
            "category": req.category,
            "legal_basis": req.legal_basis,
            "reference": req.reference,
            "authority": req.authority,
            "expires": req.expires.isoformat(),
        }
        basis = f"{req.legal_basis} {req.reference} ({req.authority})"
        w.audit(actor, "watchlist.request", object=f"watchlist:{entry_id}", justification=basis, details=details)
        return entry_id

    def _template(
        self, req: wl.WatchlistRequest, photo: Path | None, plate: str | None
    ) -> tuple[dict[str, bytes], str, str]:
        """(template of each model, stored photo, sha256) of a request's face photo (every face model) or plate."""
        if plate is not None:
            if photo is not None:
                raise InputError(
                    Phrase("a watchlist entry holds a face or a plate, not both"), hint="give --photo or --plate"
                )
            text = clean_plate(plate)
            if not 2 <= len(text) <= 10:
                raise InputError(
                    Phrase("plate {plate!r} is not 2-10 letters and digits", plate=plate), hint="e.g. --plate 123ABC02"
                )
            return {wl.PLATE_MODEL: text.encode()}, "", hashlib.sha256(text.encode()).hexdigest()
        if photo is None:
            raise InputError(
                Phrase(
                    "category {category} watches faces: a request needs a photo of the person (one face)",
                    category=req.category,
                ),
                hint="give --photo FILE (command line) or the photo field (API and web form)",
            )
        vectors, crop, sha = self.gallery.face_template(photo, purpose="watchlist")
        rel = self.ctx.media.save_encrypted(encode_jpeg(crop), cipher=self.ctx.cipher, kind="watchlist")
        return {m: np.ascontiguousarray(v, "<f4").tobytes() for m, v in vectors.items()}, rel, sha

    def approve(self, actor: User, entry_id: int, *, reason: str) -> None:
        """Approve a pending entry with a written reason; the approver must not be its requester (checked inside)."""
        self._decide(actor, entry_id, approve=True, reason=reason)

    def reject(self, actor: User, entry_id: int, *, reason: str) -> None:
        """Reject a pending entry; its template and photo are destroyed."""
        self._decide(actor, entry_id, approve=False, reason=reason)

    def _decide(self, actor: User, entry_id: int, *, approve: bool, reason: str) -> None:
        decision = "approve" if approve else "reject"
        self.uow.require(actor, f"watchlist.{decision}")
        obj, refused = f"watchlist:{entry_id}", f"watchlist.{decision}_refused"
        needs = Phrase("an approval needs a reason") if approve else Phrase("a rejection needs a reason")
        reason = self.uow.justified(
            actor, refused, reason, object=obj, reason=needs,
            hint="write why, e.g. --reason 'court order 2-77/2026 checked with the court'",
        )  # fmt: skip
        self.uow.screen(actor, refused, obj, {"reason": reason})
        if approve:
            self.expire()
        try:
            with self.uow.tx() as w:
                status, requester, category = w.watchlists.decision_facts(entry_id)
                four_eyes(Phrase("entry {entry}", entry=entry_id), status, requester, actor)
                if approve and self.ctx.policy.category(category) is None:
                    raise Refused(Phrase("category {category!r} is no longer allowed", category=category))
                why = reason
                destroyed, photo = w.watchlists.decide(
                    entry_id,
                    status=APPROVED if approve else REJECTED,
                    approver_id=actor.user_id,
                    reason=why,
                    now=self.ctx.now(),
                )
                if photo:
                    self.ctx.media.delete(photo)
                details = None if approve else {"templates_destroyed": destroyed}
                w.audit(actor, f"watchlist.{decision}", object=obj, justification=why, details=details)
        except Refused as r:
            raise self.uow.refuse(actor, refused, object=obj, reason=r.reason, hint=r.hint) from None

    def withdraw(self, actor: User, entry_id: int, *, reason: str) -> int:
        """Withdraw a pending or approved entry before it expires (the person was found, the court order lifted).

        It stops matching at once (running cameras drop it at their next look at the change feed); its templates and
        photo are destroyed as on expiry. Its requester or an approver may withdraw it, with a written reason.

        Returns:
            How many templates were destroyed.
        """
        self.uow.require(actor, "watchlist.withdraw")
        obj, refused = f"watchlist:{entry_id}", "watchlist.withdraw_refused"
        reason = self.uow.justified(
            actor, refused, reason, object=obj, reason=Phrase("a withdrawal needs a reason"),
            hint="write why, e.g. --reason 'person found; order 2-77/2026 lifted'",
        )  # fmt: skip
        self.uow.screen(actor, refused, obj, {"reason": reason})
        try:
            with self.uow.tx() as w:
                status, requester, _ = w.watchlists.decision_facts(entry_id)
                if status not in (PENDING, APPROVED):
                    raise Refused(
                        Phrase(
                            "entry {entry} is {status}; only a pending or approved entry can be withdrawn",
                            entry=entry_id,
                            status=Phrase(status),
                        )
                    )
                if "approver" not in actor.roles and requester != actor.user_id:
                    raise Refused(
                        Phrase("entry {entry} was requested by someone else", entry=entry_id),
                        hint="its requester or an approver may withdraw it",
                    )
                destroyed, photo = w.watchlists.withdraw(entry_id, by=actor.user_id, reason=reason, now=self.ctx.now())
                details: Details = {"templates_destroyed": destroyed, "was": status}
                w.audit(actor, "watchlist.withdraw", object=obj, justification=reason, details=details)
        except Refused as r:
            raise self.uow.refuse(actor, refused, object=obj, reason=r.reason, hint=r.hint) from None
        if photo:
            self.ctx.media.delete(photo)
        return destroyed

    def plates(self, actor: User, entry_ids: list[int]) -> dict[int, str]:
        """The plate text of plate entries, for the people who decide on them (audited, like their photos)."""
        self.uow.require(actor, "watchlist.photo")
        with self.uow.read() as r:
            blobs = r.watchlists.plate_blobs(entry_ids)
        out = {i: self.ctx.cipher.decrypt(b, context=f"watchlist:{i}").decode() for i, b in blobs.items()}
        if out:
            self.uow.record(actor, "watchlist.plates_view", details={"entries": ",".join(map(str, sorted(out)))})
        return out

    def show(self, actor: User, *, status: str | None = None) -> list[wl.WatchlistEntry]:
        """Watchlist entries (never their templates); viewing them is audited."""
        self.uow.require(actor, "watchlist.view")
        checked_status(status, STATUSES)
        self.expire()
        with self.uow.read() as r:
            rows = r.watchlists.list(status=status)
        self.uow.record(actor, "watchlist.view", details={"count": len(rows), "status": status or "all"})
        return rows

    def photo(self, actor: User, entry_id: int) -> bytes:
        """The enrolled photo of a watchlist entry, for the people who decide on it (audited)."""
        self.uow.require(actor, "watchlist.photo")
        with self.uow.read() as r:
            rel = r.watchlists.photo(entry_id)
        if not rel:
            raise NotFoundError(f"watchlist entry {entry_id} has no photo", hint="it expired or was rejected")
        media = self.ctx.media
        data = (
            media.read_encrypted(rel, cipher=self.ctx.cipher) if rel.endswith(".enc") else media.path(rel).read_bytes()
        )
        self.uow.record(actor, "media.export", object=f"watchlist:{entry_id}", details={"unredacted": False})
        return data

    def encrypt_plain_photos(self) -> None:
        """Watchlist photos stored in the clear by an older kuzet: encrypted like every other original."""
        with self.uow.read() as r:
            plain = r.watchlists.plain_photos()
        media = self.ctx.media
        for entry_id, rel in plain:
            path = media.path(rel)
            if not path.is_file():
                continue
            new = media.save_encrypted(path.read_bytes(), cipher=self.ctx.cipher, kind="watchlist")
            with self.uow.tx() as w:
                if not w.watchlists.replace_photo(entry_id, rel, new):
                    media.delete(new)
                    continue
                w.audit(None, "media.encrypted", object=f"watchlist:{entry_id}")
            media.delete(rel)

    def entry_active(self, entry_id: int) -> bool:
        """Whether a watchlist entry is approved and unexpired now."""
        with self.uow.read() as r:
            return r.watchlists.active(entry_id, self.ctx.now())

    def wrong_match(self, actor: User, d: TrackDecision, *, camera: str) -> bool:
        """Whether a face hit shows an appearance reviewers marked a wrong match of its entry: then it is no alert.

        A marked appearance suppresses a new track that looks at least as much like it as like the entry (its mean
        over shots of the best similarity to the marked track's descriptors reaches the track's score for the
        entry): the same innocent look-alike again. The entry's real subject looks more like the entry and is still
        alerted. Each suppressed hit is ledgered (`alert.suppressed`, naming the alert whose rejection caused it),
        so that an auditor sees what a wrong-match mark kept from review.
        """
        if d.identity is None or d.descriptors is None or not len(d.descriptors):
            return False
        ctx = self.ctx
        entry = d.identity.person_id
        with self.uow.read() as r:
            marked = r.alerts.wrong_matches(entry, model=ctx.config.face_matcher, cipher=ctx.cipher)
        if not marked:
            return False
        sims = [
            (float(self.gallery.of_rows(rows, d.identity).person_similarities(d.descriptors)[:, 0].mean()), alert_id)
            for alert_id, rows in marked
        ]
        similarity, alert_id = max(sims)
        if similarity < d.score:
            return False
        details: Details = {
            "camera": camera, "score": round(d.score, 4), "wrong_match_alert": alert_id,
            "similarity": round(similarity, 4),
        }  # fmt: skip
        self.uow.record(actor, "alert.suppressed", object=f"watchlist:{entry}", details=details)
        return True

    def entry_category(self, entry_id: int) -> CategoryPolicy | None:
        """The policy category of an entry (None when it or its category is gone)."""
        with self.uow.read() as r:
            category = r.watchlists.category_of(entry_id)
        return None if category is None else self.ctx.policy.category(category)

    def active_plates(self) -> dict[str, Identity]:
        """Approved, unexpired plate entries: normalised plate text -> the entry."""
        ctx = self.ctx
        with self.uow.read() as r:
            return r.watchlists.active_plates(now=ctx.now(), policy=ctx.policy, cipher=ctx.cipher)


def _pending_refusal(pending: int) -> Refused:
    return Refused(
        Phrase("the same request is already pending as entry {entry}", entry=pending),
        hint=f"wait for the decision on entry {pending}, or withdraw it "
        f"(`kuzet watchlist withdraw {pending} --reason ...`) and file a changed request",
    )

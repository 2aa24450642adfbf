"""Stored media: redacted by default; the originals for the few, with a written reason, every time audited."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kuzet.audit.ledger import Details
from kuzet.core.errors import InputError, KuzetError, NotFoundError
from kuzet.core.types import User
from kuzet.governance.redaction import redact_video
from kuzet.services import permissions
from kuzet.services.context import ServiceContext
from kuzet.services.gallery import GalleryService
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.services.watchlists import WatchlistService
from kuzet.store.files import private_dir


@dataclass(frozen=True, slots=True)
class Recording:
    """A kept recording segment (encrypted under the media folder)."""

    path: str
    camera: str
    written_at: datetime
    bytes: int


class MediaService:
    """Snapshots, best shots, photos and recordings, exported; grants of unredacted access."""

    def __init__(
        self, ctx: ServiceContext, uow: AuditedUnitOfWork, gallery: GalleryService, watchlists: WatchlistService
    ) -> None:
        self.ctx = ctx
        self.uow = uow
        self.gallery = gallery
        self.watchlists = watchlists

    def grant(self, actor: User, name: str, *, hours: float, justification: str) -> datetime:
        """Let user `name` see unredacted media for `hours` (admins); returns when the grant ends."""
        self.uow.require(actor, "access.grant")
        obj = f"user:{name[:64]}"
        self.uow.justified(
            actor,
            "access.grant_refused",
            justification,
            object=obj,
            reason="a grant needs a written justification",
            hint="explain why in at least 10 characters",
        )
        if not 0 < hours <= 72:
            raise self.uow.refuse(
                actor,
                "access.grant_refused",
                object=obj,
                reason="a grant lasts between a few minutes and 72 hours",
                hint="e.g. --hours 4",
            )
        with self.uow.tx() as w:
            user = w.users.by_name(name)
            if user is None:
                raise NotFoundError(f"user {name!r} does not exist", hint="see `kuzet users list`")
            until = self.ctx.now() + timedelta(hours=hours)
            w.grants.add(
                user.user_id,
                granted_by=actor.user_id,
                justification=justification.strip(),
                now=self.ctx.now(),
                until=until,
            )
            details: Details = {"hours": hours, "until": until.isoformat()}
            w.audit(actor, "access.grant", object=f"user:{name}", justification=justification.strip(), details=details)
        return until

    def _require_unredacted(self, actor: User, action: str, obj: str, what: str) -> None:
        """Refuse (and ledger the refusal) unless `actor` may see unredacted `what`: by role, or by a current grant."""
        if permissions.holds(actor, "media.unredacted"):
            return
        with self.uow.read() as r:
            if r.grants.active(actor.user_id, now=self.ctx.now()):
                return
        raise self.uow.deny(
            actor,
            action,
            object=obj,
            reason=f"{actor.name} may not see unredacted {what}: it needs the reviewer or auditor role or a grant",
            hint="ask an administrator for `kuzet access grant`",
        )

    def export(self, actor: User, kind: str, object_id: int, *, unredacted: bool, justification: str) -> list[bytes]:
        """JPEG bytes of an event's snapshot, an alert's best shots, or a watchlist entry's or enrolment's photo.

        The unredacted originals need the reviewer or auditor role or a current grant, and a written justification.
        Every export is audited.
        """
        if kind == "watchlist":
            return [self.watchlists.photo(actor, object_id)]
        if kind == "person":
            return self.gallery.photos(actor, object_id)
        self.uow.require(actor, "media.export")
        if kind not in ("event", "alert"):
            raise KuzetError(f"unknown kind {kind!r}", hint="use event, alert or watchlist")
        obj = f"{kind}:{object_id}"
        if unredacted:
            self.uow.justified(
                actor,
                "media.export_refused",
                justification,
                object=obj,
                reason="unredacted access needs a written justification of at least 10 characters",
            )
            self._require_unredacted(actor, "media.export_refused", obj, "media")
        redacted, originals = self._files(kind, object_id)
        media, cipher = self.ctx.media, self.ctx.cipher
        if unredacted:
            data = [media.read_encrypted(rel, cipher=cipher) for rel in originals if rel]
        else:
            data = [media.path(rel).read_bytes() for rel in redacted if rel]
        details: Details = {"unredacted": unredacted, "files": len(data)}
        self.uow.record(actor, "media.export", object=obj, justification=justification.strip(), details=details)
        return data

    def _files(self, kind: str, object_id: int) -> tuple[list[str], list[str]]:
        with self.uow.read() as r:
            if kind == "event":
                event = r.events.media_of(object_id)
                if event is None:
                    raise NotFoundError(f"event {object_id} does not exist", hint="see `kuzet events`")
                return [event[0]], [event[1]]
            alert = r.alerts.media_of(object_id)
            if alert is None:
                raise NotFoundError(f"alert {object_id} does not exist", hint="see `kuzet review list`")
            return alert

    def recordings(self, actor: User, *, camera: str | None = None) -> list[Recording]:
        """Kept recording segments (newest first) with their camera, size and time; listing them is audited."""
        self.uow.require(actor, "recordings.list")
        media = self.ctx.media
        root = media.root / "recordings"
        found = []
        if root.is_dir():
            for path in root.rglob("*.mp4.enc"):
                rel = path.relative_to(media.root).as_posix()
                cam = rel.split("/")[1]
                if camera is None or cam == camera:
                    st = path.stat()
                    found.append(Recording(rel, cam, datetime.fromtimestamp(st.st_mtime, UTC), st.st_size))
        found.sort(key=lambda r: (r.written_at, r.path), reverse=True)
        self.uow.record(actor, "recording.list", details={"camera": camera or "", "count": len(found)})
        return found

    def export_recording(self, actor: User, rel: str, out: Path, *, unredacted: bool, justification: str) -> None:
        """Write a recording segment to `out` (MP4): every face and plate hidden unless `unredacted`; audited.

        Any export needs a written justification; the unredacted original also the reviewer or auditor role or a
        current access grant.
        """
        self.uow.require(actor, "recordings.export")
        if not rel.startswith("recordings/") or not rel.endswith(".mp4.enc"):
            raise InputError(f"{rel!r} is not a recording", hint="take a path from `kuzet recordings list`")
        self.uow.justified(
            actor,
            "recording.export_refused",
            justification,
            object=rel,
            reason="exporting a recording needs a written justification of at least 10 characters",
        )
        if unredacted:
            self._require_unredacted(actor, "recording.export_refused", rel, "recordings")
        data = self.ctx.media.read_encrypted(rel, cipher=self.ctx.cipher)
        out.parent.mkdir(parents=True, exist_ok=True)
        if unredacted:
            out.write_bytes(data)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                plain = private_dir(Path(tmp)) / "segment.mp4"
                plain.write_bytes(data)  # decrypted only in a private temporary folder, removed at once
                redact_video(plain, out, self.ctx.models.video_redactor, face_every=1, plate_every=5)
        details: Details = {"unredacted": unredacted}
        self.uow.record(actor, "recording.export", object=rel, justification=justification.strip(), details=details)

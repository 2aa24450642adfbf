"""Stored media: redacted by default; the originals for the few, with a written reason, every time audited."""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kuzet.audit.ledger import Details
from kuzet.config.cameras import CAMERA_NAME, CameraConfig
from kuzet.core.errors import BusyError, InputError, KuzetError, NotFoundError, StoreError
from kuzet.core.i18n import Phrase
from kuzet.core.types import Image, User
from kuzet.governance.redaction import plate_zones, redact_video
from kuzet.services import permissions
from kuzet.services.context import ServiceContext
from kuzet.services.gallery import GalleryService
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.services.watchlists import WatchlistService
from kuzet.store.files import FILE_MODE, private_dir
from kuzet.store.media import MediaStore


@dataclass(frozen=True, slots=True)
class Recording:
    """A kept recording segment (encrypted under the media folder)."""

    path: str
    camera: str
    written_at: datetime
    bytes: int

    @property
    def segment(self) -> str:
        """Its path under the camera's folder without `.enc` (`YYYY/MM/DD/NAME.mp4`), as the player's URL names it."""
        return self.path.removeprefix(f"recordings/{self.camera}/").removesuffix(".enc")


SEGMENT = re.compile(r"[0-9]{4}/[0-9]{2}/[0-9]{2}/[A-Za-z0-9_-]{1,80}\.mp4")
"""A segment as `Recording.segment` names it: no other shape is looked up (no `..`, no other folder or file)."""


GRANT_MIN_HOURS = 5 / 60
"""The shortest grant of unredacted access (a grant shorter than the time to use it only fills the ledger)."""


class MediaService:
    """Snapshots, best shots, photos and recordings, exported; grants of unredacted access."""

    def __init__(
        self, ctx: ServiceContext, uow: AuditedUnitOfWork, gallery: GalleryService, watchlists: WatchlistService
    ) -> None:
        self.ctx = ctx
        self.uow = uow
        self.gallery = gallery
        self.watchlists = watchlists
        self._play_lock = threading.Lock()
        self._redacting: dict[str, threading.Lock] = {}
        self._redaction_slots = threading.BoundedSemaphore(self.REDACTIONS_AT_ONCE)
        self._played: dict[tuple[int, str], float] = {}

    def grant(self, actor: User, name: str, *, hours: float, justification: str) -> datetime:
        """Let user `name` see unredacted media for `hours` (admins); returns when the grant ends."""
        self.uow.require(actor, "access.grant")
        obj = f"user:{name[:64]}"
        self.uow.justified(
            actor,
            "access.grant_refused",
            justification,
            object=obj,
            reason=Phrase("a grant needs a written justification"),
            hint="explain why in at least 10 characters",
        )
        if not GRANT_MIN_HOURS <= hours <= 72:  # also NaN
            raise self.uow.refuse(
                actor,
                "access.grant_refused",
                object=obj,
                reason=Phrase("a grant lasts between 5 minutes and 72 hours"),
                hint="e.g. --hours 4",
            )
        if name == actor.name:
            raise self.uow.refuse(
                actor,
                "access.grant_refused",
                object=obj,
                reason=Phrase("nobody grants unredacted access to themselves"),
                hint="another administrator grants it, and the ledger shows who",
            )
        with self.uow.tx() as w:
            user = w.users.by_name(name)
            if user is None:
                raise NotFoundError(Phrase("user {name!r} does not exist", name=name), hint="see `kuzet users list`")
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
            reason=Phrase(
                "{user} may not see unredacted {what}: it needs the reviewer or auditor role or a grant",
                user=actor.name,
                what=what,
            ),
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
                reason=Phrase("unredacted access needs a written justification of at least 10 characters"),
            )
            self._require_unredacted(actor, "media.export_refused", obj, Phrase("media"))
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
                    raise NotFoundError(
                        Phrase("event {event} does not exist", event=object_id), hint="see `kuzet events`"
                    )
                return [event[0]], [event[1]]
            alert = r.alerts.media_of(object_id)
            if alert is None:
                raise NotFoundError(
                    Phrase("alert {alert} does not exist", alert=object_id), hint="see `kuzet review list`"
                )
            return alert

    def recordings(self, actor: User, *, camera: str | None = None) -> list[Recording]:
        """Kept recording segments (newest first) with their camera, size and time; listing them is audited."""
        self.uow.require(actor, "recordings.list")
        media = self.ctx.media
        root = media.root / "recordings"
        base = root / camera if camera is not None and re.fullmatch(CAMERA_NAME, camera) else root
        found = []
        if base.is_dir():
            for path in base.rglob("*.mp4.enc"):
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
            raise InputError(
                Phrase("{path!r} is not a recording", path=rel), hint="take a path from `kuzet recordings list`"
            )
        self.uow.justified(
            actor,
            "recording.export_refused",
            justification,
            object=rel,
            reason=Phrase("exporting a recording needs a written justification of at least 10 characters"),
        )
        if unredacted:
            self._require_unredacted(actor, "recording.export_refused", rel, Phrase("recordings"))
        out.parent.mkdir(parents=True, exist_ok=True)
        if unredacted:
            out.write_bytes(self.ctx.media.read_encrypted(rel, cipher=self.ctx.cipher))
        else:
            self._redact_recording(rel, out)
        details: Details = {"unredacted": unredacted}
        self.uow.record(actor, "recording.export", object=rel, justification=justification.strip(), details=details)

    def _redact_recording(self, rel: str, out: Path) -> None:
        """Write segment `rel` to `out` (H.264 MP4, faststart) with every face and plate hidden on every frame.

        The segment is decrypted into memory and decoded from there: the original never lies on disk in plain form.
        """
        data = self.ctx.media.read_encrypted(rel, cipher=self.ctx.cipher)
        name = rel.split("/")[1]  # recordings/CAMERA/...
        camera = next((c for c in self.ctx.config.cameras if c.name == name), None)
        redact_video(
            io.BytesIO(data), out, self.ctx.models.video_redactor, face_every=1, plate_every=5,
            also_hide=plate_places(camera),
        )  # fmt: skip

    PLAY_AUDIT_S = 60.0
    """Playing a segment is ledgered once per user and segment in this many seconds: a player fetches one play in
    several requests (byte ranges, seeks), and each would otherwise be an entry."""

    def play_recording(self, actor: User, camera: str, segment: str) -> Path:
        """A kept segment of `camera` redacted for the player: an H.264 MP4 file with every face and plate hidden.

        The copy is made the way `export_recording` makes one (every frame), once, and kept owner-only in
        `DATA_DIR/run/playback/` for the next plays; the next play or retention run removes it once it has not been
        played for an hour, once its segment is gone, or when newer plays crowd it out. The play is ledgered as
        `recording.view` (see PLAY_AUDIT_S); a name that is not a recording's, or one not kept, as
        `recording.view_refused`. At most REDACTIONS_AT_ONCE segments are redacted at a time.

        Args:
            actor: Who plays it (needs `recordings.view`; a refusal is ledgered).
            camera: The camera's name.
            segment: `Recording.segment`: the path under the camera's folder, e.g. `2026/11/27/120000-0a1b.mp4`.

        Raises:
            InputError: `camera` or `segment` is not of the shape names have here (a path that tries to leave).
            NotFoundError: The camera has no such recording.
        """
        self.uow.require(actor, "recordings.view")
        asked = f"recording:{camera[:64]}/{segment[:120]}"
        if not re.fullmatch(CAMERA_NAME, camera) or len(camera) > 64 or not SEGMENT.fullmatch(segment):
            self.uow.record(actor, "recording.view_refused", object=asked, justification="not a recording's name")
            raise InputError(
                f"{camera[:64]!r}/{segment[:120]!r} is not a recording's name", hint="take one from the camera's page"
            )
        rel = f"recordings/{camera}/{segment}.enc"
        media = self.ctx.media
        source = media.path(rel)
        folder = (media.root / "recordings" / camera).resolve()
        if not source.is_relative_to(folder) or not source.is_file():
            self.uow.record(actor, "recording.view_refused", object=asked, justification="no such recording")
            raise NotFoundError(
                Phrase("camera {camera!r} has no recording {segment!r}", camera=camera, segment=segment),
                hint="it may have been deleted by retention",
            )
        copy = self._playback_copy(rel)
        key, now = (actor.user_id, rel), time.monotonic()
        with self._play_lock:
            due = now - self._played.get(key, -self.PLAY_AUDIT_S) >= self.PLAY_AUDIT_S
            if due:
                self._played = {k: t for k, t in self._played.items() if now - t < self.PLAY_AUDIT_S}
                self._played[key] = now
        if due:
            self.uow.record(actor, "recording.view", object=rel, details={"camera": camera, "redacted": True})
        return copy

    REDACTIONS_AT_ONCE = 2
    """Segments redacted for the player at the same time; more first plays wait their turn or are told to retry."""

    def _playback_copy(self, rel: str) -> Path:
        """The redacted copy of `rel` in `playback_dir`, made now when there is none; marked as just played.

        Raises:
            BusyError: REDACTIONS_AT_ONCE other segments are being redacted for 30 s and more.
        """
        folder = private_dir(playback_dir(self.ctx.data_dir))
        name = rel.removeprefix("recordings/").removesuffix(".enc").replace("/", "~")  # names hold no "~"
        copy = folder / name
        with self._play_lock:
            lock = self._redacting.setdefault(rel, threading.Lock())
        with lock:  # two requests for one segment (a player's first ones): one redaction
            if not copy.is_file():
                if not self._redaction_slots.acquire(timeout=30):
                    raise BusyError(
                        Phrase("other recordings are being prepared for playing"), hint="try again in a minute"
                    )
                part = folder / f".{uuid.uuid4().hex}.part.mp4"
                try:
                    os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))  # owner-only at once
                    self._redact_recording(rel, part)
                    os.replace(part, copy)
                finally:
                    self._redaction_slots.release()
                    part.unlink(missing_ok=True)
            played = self.ctx.now().timestamp()  # the injected clock: real time outside tests
            if played - copy.stat().st_mtime > 60:  # played now: kept another PLAYBACK_KEEP_S (a stable ETag within)
                os.utime(copy, (played, played))
        with self._play_lock:
            if not lock.locked():
                self._redacting.pop(rel, None)
        sweep_playback(self.ctx.media, folder, now=played, keep=copy)
        return copy


def plate_places(camera: CameraConfig | None) -> Callable[[Image], NDArray[np.float32]] | None:
    """For a traffic camera's video: where each frame's vehicles may show a plate too small to find (`plate_zones`)."""
    if camera is None or "traffic" not in camera.analytics:
        return None
    from kuzet.detect.objects import build_object_detector

    vehicles = build_object_detector(camera.traffic.object_detector)

    def places(image: Image) -> NDArray[np.float32]:
        found = vehicles.detect(image)
        labels = found.labels if found.labels is not None else np.full(len(found), "vehicle")
        return plate_zones(found.boxes[labels == "vehicle"])

    return places


PLAYBACK_KEEP_S = 3600.0
"""A redacted copy made for playback is removed this long after it was last played."""

PLAYBACK_MAX = 32
"""Redacted copies kept for playback at most (the least recently played go first)."""


def playback_dir(data_dir: Path) -> Path:
    """Where redacted copies of recording segments wait to be played again (owner-only)."""
    return data_dir / "run" / "playback"


def sweep_playback(media: MediaStore, folder: Path, *, now: float, keep: Path | None = None) -> int:
    """Remove stale redacted playback copies; returns how many were removed (retention sweeps after every purge).

    Stale: the segment was deleted, the copy was not played for PLAYBACK_KEEP_S or is beyond PLAYBACK_MAX, or a crash
    left it half made. `now` is Unix seconds; a copy's modification time is its last play.
    """
    if not folder.is_dir():
        return 0
    copies = []
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            copies.append((path.stat().st_mtime, path))
    copies.sort(reverse=True)
    removed, kept = 0, 0
    for played, path in copies:
        if path == keep:
            continue
        if path.name.startswith("."):  # being written, or left by a crash: redacting a segment takes minutes
            stale = now - played > PLAYBACK_KEEP_S
        else:
            rel = "recordings/" + path.name.replace("~", "/") + ".enc"
            try:
                gone = not media.path(rel).is_file()
            except StoreError:
                gone = True
            stale = gone or now - played > PLAYBACK_KEEP_S
            kept += not stale
            stale = stale or kept > PLAYBACK_MAX
        if stale:
            path.unlink(missing_ok=True)
            removed += 1
    return removed

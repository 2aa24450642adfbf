"""Enrolment of consenting people under the four-eyes rule, and the gallery each camera matches against."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from kuzet.audit.ledger import Details
from kuzet.core.errors import EnrolmentError, InputError, KuzetError
from kuzet.core.i18n import Phrase
from kuzet.core.timeutil import iso_utc
from kuzet.core.types import Identity, User
from kuzet.governance.approval import PENDING, STATUSES, checked_status, decision_refusal
from kuzet.governance.enrolment import ALL_CAMERAS, EnrolmentRequest, check_enrolment, in_scope, resolved_expiry
from kuzet.governance.watchlists import expiry_instant
from kuzet.ingest.images import load_image_and_digest
from kuzet.recognize.align import crop_with_margin
from kuzet.recognize.gallery import FusedGallery, Gallery, build_gallery
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork, Refused, Work
from kuzet.store.media import decode_jpeg, encode_jpeg
from kuzet.store.repositories.gallery import Enrolment, NewTemplate, PersonSummary
from kuzet.track.bestshot import view_quality

Templates = tuple[NDArray[np.float32], NDArray[np.intp]]
"""One face model's templates (M, D) and the index of each one's owner in a people list (M,)."""


@dataclass(frozen=True, slots=True)
class ReembedResult:
    """What `reembed` did: subjects given templates, templates added, and subjects whose photo showed no face."""

    people: int
    entries: int
    templates: int
    failed: list[str]


@dataclass(frozen=True, slots=True)
class EnrolResult:
    """What `enroll` did."""

    identity: Identity
    added: int
    skipped_duplicates: int


def four_eyes(what: str, status: str, requester_id: int | None, actor: User) -> None:
    """Raise `Refused` (inside the deciding transaction) unless `actor` may decide request `what`."""
    refusal = decision_refusal(
        what, status=status, requester_id=requester_id, decider_id=actor.user_id, decider_name=actor.name
    )
    if refusal is not None:
        raise Refused(refusal.reason, refusal.hint)


Purpose = Literal["enrolment", "watchlist", "search"]
"""What a photo of one person is for: its errors speak of that (`GalleryService.face_template`)."""


def _unreadable(photo: Path, problem: str, hint: str, purpose: Purpose) -> KuzetError:
    """The error for a photo that cannot be read."""
    if purpose == "search":
        said = Phrase("cannot look for the person in {photo}: {problem}", photo=photo, problem=problem)
        return InputError(said, hint=hint)
    if purpose == "watchlist":
        return EnrolmentError(
            Phrase("cannot use {photo} for a watchlist entry: {problem}", photo=photo, problem=problem), hint=hint
        )
    return EnrolmentError(Phrase("cannot enrol from {photo}: {problem}", photo=photo, problem=problem), hint=hint)


def _not_one_face(photo: Path, faces: int, purpose: Purpose) -> KuzetError:
    """The error for a photo that shows no face or several, where one person's face is wanted.

    For a search the photo is of a person asking what kuzet holds about them (an `InputError`); else it is an
    enrolment or watchlist photo (an `EnrolmentError`).
    """
    if purpose == "search" and faces == 0:
        return InputError(
            Phrase("no face found in {photo}", photo=photo),
            hint="use a clear, frontal photo of the person asking where the face is at least 40 px",
        )
    if purpose == "search":
        return InputError(
            Phrase(
                "{faces} faces found in {photo}; the photo must show only the person asking", faces=faces, photo=photo
            ),
            hint="crop the photo to the person whose data is asked for",
        )
    if faces == 0:
        return EnrolmentError(
            Phrase("no face found in {photo}", photo=photo),
            hint="use a clear, frontal photo where the face is at least 40 px",
        )
    if purpose == "watchlist":
        return EnrolmentError(
            Phrase(
                "{faces} faces found in {photo}; a watchlist photo must show one person only", faces=faces, photo=photo
            ),
            hint="crop the photo to the person the entry is about",
        )
    return EnrolmentError(
        Phrase(
            "{faces} faces found in {photo}; an enrolment photo must show one person only", faces=faces, photo=photo
        ),
        hint="crop the photo to the person being enrolled",
    )


class GalleryService:
    """Enrolments (requested, approved or rejected, expiring) and the per-camera gallery built from them."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def face_template(
        self, photo: Path, *, check_quality: bool = True, purpose: Purpose = "enrolment"
    ) -> tuple[dict[str, NDArray[np.float32]], NDArray[np.uint8], str]:
        """(descriptor of each face model, face crop, photo sha256) from a photo that must show exactly one face.

        Every configured face model (`face_embedder`, and `face_fusion`'s) describes the face, each from its own
        alignment. With `check_quality` (enrolments and watchlist photos) the face must also be good enough for a
        reliable template by the measure recognition gates tracks on (size x frontal pose x sharpness against
        `recognition.min_quality`); a poor one is refused, saying whether it is small, turned, dark or blurred.
        Its errors speak of the photo's `purpose`: an enrolment, a watchlist entry, or a search (the photo of a
        person asking what kuzet holds about them: an `InputError`).
        """
        try:  # one read: the digest is of the very bytes described
            image, sha = load_image_and_digest(photo, max_pixels=self.ctx.config.ingest.max_pixels)
        except InputError as exc:
            raise _unreadable(photo, exc.message, exc.hint, purpose) from None
        vectors, box = self._describe(image, photo, check_quality=check_quality, purpose=purpose)
        return vectors, crop_with_margin(image, box), sha

    def _describe(
        self,
        image: NDArray[np.uint8],
        photo: Path,
        *,
        check_quality: bool,
        models: list[str] | None = None,
        purpose: Purpose = "enrolment",
    ) -> tuple[dict[str, NDArray[np.float32]], NDArray[np.float32]]:
        """Each face model's descriptor (just `models`, by name) of the one face in `image`, and its box."""
        found = self.ctx.models
        dets = found.face_detector.detect(image)
        if len(dets) != 1:
            raise _not_one_face(photo, len(dets), purpose)
        assert dets.landmarks is not None
        wanted = [(a, e) for a, e in found.face_models if models is None or e.name in models]
        chips = [aligner.align(image, dets.boxes, dets.landmarks) for aligner, _ in wanted]  # each model's own cut
        if check_quality:
            assert models is None  # the quality measure reads the first model's chip
            quality = view_quality(chips[0][0], dets.boxes[0], dets.landmarks[0])
            least = self.ctx.config.recognition.min_quality
            if quality.value < least:
                raise EnrolmentError(
                    Phrase(
                        "the face in {photo} is too poor for a reliable template: {problems} "
                        "(quality {quality:.2f}, at least {least:.2f} needed)",
                        photo=photo.name,
                        problems=quality.problems(),
                        quality=quality.value,
                        least=least,
                    ),
                    hint="use a sharp, well-lit, frontal photo where the face is at least 100 px across",
                )
        vectors = {embedder.name: embedder.embed(c)[0] for (_, embedder), c in zip(wanted, chips, strict=True)}
        return vectors, dets.boxes[0]

    def enroll(
        self,
        actor: User,
        name: str,
        photos: list[Path],
        *,
        consent: str,
        scope: list[str] | None = None,
        expires: date | None = None,
    ) -> EnrolResult:
        """Request the enrolment of a consenting person (e.g. staff at an access point); a second person approves it.

        The enrolment records the consent reference, the cameras (by name or purpose) the person may be recognised
        on and an expiry; it matches nobody until a different user with the approver role approves it. Every photo
        is checked before anything is stored: one bad photo refuses the whole enrolment. Captured faces are never
        enrolled automatically: this is the only way into the gallery.

        Raises:
            EnrolmentError: A photo is unreadable, shows no face or more than one face, or the name is invalid.
            PolicyRefusal: A field carries a prohibited label, the consent record is missing, or the expiry is
                beyond the policy's maximum (audited).
        """
        self.uow.require(actor, "people.enrol")
        today = self.ctx.now().date()  # the day the request is checked and its expiry resolved against
        req = self._checked_request(actor, name, photos, consent=consent, scope=scope, expires=expires, today=today)
        templates, crops = [], []
        for photo in photos:
            vectors, crop, sha = self.face_template(photo)
            templates += [NewTemplate(vector=v, photo_sha256=sha, model=m) for m, v in vectors.items()]
            crops.append(crop)
        self.expire()
        media, cipher = self.ctx.media, self.ctx.cipher
        written = [media.save_encrypted(encode_jpeg(c), cipher=cipher, kind="enrolment") for c in crops]
        try:
            with self.uow.tx() as w:
                identity, added = self._store(w, actor, req, templates, written, today=today)
        except BaseException:
            for rel in written:
                media.delete(rel)
            raise
        per_photo = len(self.ctx.config.face_models)
        return EnrolResult(
            identity=identity, added=added // per_photo, skipped_duplicates=len(photos) - added // per_photo
        )

    def _checked_request(
        self,
        actor: User,
        name: str,
        photos: list[Path],
        *,
        consent: str,
        scope: list[str] | None,
        expires: date | None,
        today: date,
    ) -> EnrolmentRequest:
        name = name.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise EnrolmentError(Phrase("invalid name {name!r}", name=name), hint="give 1-200 printable characters")
        if not photos:
            raise EnrolmentError(Phrase("no photos given"), hint="give one or more photos of the person")
        req = EnrolmentRequest(name=name, consent=consent.strip(), scope=tuple(scope or [ALL_CAMERAS]), expires=expires)
        refusal = check_enrolment(req, self.ctx.policy, today=today)
        if refusal is not None:
            raise self.uow.refuse(actor, "enrol.refused", object=f"person:{name}", reason=refusal.reason)
        return req

    def _store(
        self,
        w: Work,
        actor: User,
        req: EnrolmentRequest,
        templates: list[NewTemplate],
        photos: list[str],
        *,
        today: date,
    ) -> tuple[Identity, int]:
        expiry = resolved_expiry(req, self.ctx.policy, today=today)
        enrolment = Enrolment(
            consent=req.consent,
            scope=req.scope,
            expires_at=expiry_instant(expiry),
            requester_id=actor.user_id,
            photos=tuple(photos),
        )
        identity, added = w.gallery.add_templates(
            req.name,
            templates,
            model=self.ctx.config.face_embedder.type,
            cipher=self.ctx.cipher,
            enrolment=enrolment,
            now=self.ctx.now(),
        )
        details: Details = {
            "name": req.name,
            "templates_added": added // len(self.ctx.config.face_models),
            "basis": "consent",
            "scope": ",".join(req.scope),
            "expires": expiry.isoformat(),
            "status": PENDING,
        }
        w.audit(actor, "enrol", object=f"person:{identity.person_id}", justification=req.consent, details=details)
        return identity, added

    def approve(self, actor: User, person_id: int, *, reason: str = "") -> None:
        """Approve a pending enrolment; the approver must not be the one who enrolled the person."""
        self._decide(actor, person_id, approve=True, reason=reason)

    def reject(self, actor: User, person_id: int, *, reason: str) -> None:
        """Reject a pending enrolment: its templates and photos are destroyed."""
        self._decide(actor, person_id, approve=False, reason=reason)

    def _decide(self, actor: User, person_id: int, *, approve: bool, reason: str) -> None:
        decision = "approve" if approve else "reject"
        self.uow.require(actor, f"people.{decision}")
        obj = f"person:{person_id}"
        if not approve and not reason.strip():
            raise self.uow.refuse(
                actor,
                "enrol.reject_refused",
                object=obj,
                reason=Phrase("a rejection needs a reason"),
                hint="add --reason TEXT",
            )
        self.uow.screen(actor, f"enrol.{decision}_refused", obj, {"reason": reason})
        self.expire()
        try:
            with self.uow.tx() as w:
                status, requester = w.gallery.status_of(person_id)
                four_eyes(Phrase("the enrolment of person {person}", person=person_id), status, requester, actor)
                destroyed, photos, scope = w.gallery.decide(
                    person_id, approve=approve, approver_id=actor.user_id, reason=reason.strip(), now=self.ctx.now()
                )
                for rel in photos:
                    self.ctx.media.delete(rel)
                details: Details = {"scope": scope} if approve else {"templates_destroyed": destroyed}
                w.audit(actor, f"enrol.{decision}", object=obj, justification=reason.strip(), details=details)
        except Refused as r:
            raise self.uow.refuse(
                actor, f"enrol.{decision}_refused", object=obj, reason=r.reason, hint=r.hint
            ) from None

    def expire(self) -> list[int]:
        """Expire every enrolment past its expiry: it stops matching and its templates and photos are destroyed."""
        now = self.ctx.now()
        with self.uow.read() as r:
            if not r.gallery.due_for_expiry(now):
                return []
        with self.uow.tx() as w:
            expired = w.gallery.expire_due(now)
            for person_id, destroyed, photos, expires_at in expired:
                for rel in photos:
                    self.ctx.media.delete(rel)
                details: Details = {"templates_destroyed": destroyed, "expires_at": iso_utc(expires_at)}
                w.audit(None, "enrol.expired", object=f"person:{person_id}", details=details)
        return [e[0] for e in expired]

    def reembed(self, actor: User) -> ReembedResult:
        """Give enrolments and face watchlist entries the templates of every configured face model they lack.

        For pending and approved ones, after `face_fusion` is set: their stored, encrypted photos are described by
        each model they lack a template of. Nothing new is enrolled: only photos already approved (or waiting for
        approval) are described again, and the writing transaction checks that each subject is still in force,
        still holds that photo and still lacks that model. Each subject given templates, or whose photo showed no
        face, gets its own ledger entry (`templates.reembed`); a subject whose photo showed no face keeps matching
        nobody under fusion until it is enrolled again.
        """
        self.uow.require(actor, "people.reembed")
        ctx = self.ctx
        self.expire()
        person_templates, entry_templates, failed = self._lacking_templates()
        done: dict[str, int] = {}
        with self.uow.tx() as w:
            now = ctx.now()
            for person_id, templates in person_templates.items():
                n = w.gallery.add_model_templates(person_id, templates, cipher=ctx.cipher, now=now)
                if n:
                    done[f"person:{person_id}"] = n
            for entry_id, (rel, blobs) in entry_templates.items():
                n = sum(
                    w.watchlists.add_model_template(
                        entry_id, model=m, template=b, photo=rel, cipher=ctx.cipher, now=now
                    )
                    for m, b in blobs.items()
                )
                if n:
                    done[f"watchlist:{entry_id}"] = n
            for subject in sorted(done.keys() | failed):
                details: Details = {
                    "models": ",".join(ctx.config.face_models),
                    "templates_added": done.get(subject, 0),
                    "no_face": subject in failed,
                }
                w.audit(actor, "templates.reembed", object=subject, details=details)
        return ReembedResult(
            people=sum(1 for s in done if s.startswith("person:")),
            entries=sum(1 for s in done if s.startswith("watchlist:")),
            templates=sum(done.values()),
            failed=sorted(failed),
        )

    def _lacking_templates(
        self,
    ) -> tuple[dict[int, list[tuple[str, NewTemplate]]], dict[int, tuple[str, dict[str, bytes]]], set[str]]:
        """The templates subjects lack, described from their stored photos (outside any transaction, it is slow).

        Returns:
            Per person, (photo, template) pairs; per watchlist entry, its photo and each model's template; and the
            subjects (`person:ID`, `watchlist:ID`) whose photo showed no face.
        """
        with self.uow.read() as r:
            people = r.gallery.lacking(self.ctx.config.face_models)
            entries = r.watchlists.lacking(self.ctx.config.face_models)
        person_templates: dict[int, list[tuple[str, NewTemplate]]] = {}
        entry_templates: dict[int, tuple[str, dict[str, bytes]]] = {}
        failed: set[str] = set()
        for person_id, missing, photos in people:
            for rel in photos:
                got = self._redescribe(rel, missing)
                if got is None:
                    failed.add(f"person:{person_id}")
                    continue
                vectors, sha = got
                person_templates.setdefault(person_id, []).extend(
                    (rel, NewTemplate(vector=v, photo_sha256=sha, model=m)) for m, v in vectors.items()
                )
        for entry_id, missing, rel in entries:
            found = self._redescribe(rel, missing)
            if found is None:
                failed.add(f"watchlist:{entry_id}")
                continue
            entry_templates[entry_id] = (
                rel,
                {m: np.ascontiguousarray(v, "<f4").tobytes() for m, v in found[0].items()},
            )
        return person_templates, entry_templates, failed

    def _redescribe(self, rel: str, models: list[str]) -> tuple[dict[str, NDArray[np.float32]], str] | None:
        """`models`' descriptors of the face in a stored (encrypted) photo and the photo's sha256; None: no face."""
        data = self.ctx.media.read_encrypted(rel, cipher=self.ctx.cipher)
        try:
            vectors, _ = self._describe(decode_jpeg(data), Path(rel), check_quality=False, models=models)
        except EnrolmentError:
            return None
        return vectors, hashlib.sha256(data).hexdigest()

    def people(self, actor: User, *, status: str | None = None) -> list[PersonSummary]:
        """Every enrolment (pending, approved, rejected, expired), with consent, scope and expiry (audited)."""
        self.uow.require(actor, "people.view")
        checked_status(status, STATUSES)
        self.expire()
        with self.uow.read() as r:
            rows = r.gallery.people(status=status, model=self.ctx.config.face_embedder.type)
        self.uow.record(actor, "people.view", details={"count": len(rows), "status": status or "all"})
        return rows

    def photos(self, actor: User, person_id: int) -> list[bytes]:
        """An enrolment's photos (face crops), for whoever decides on or audits it (audited)."""
        self.uow.require(actor, "people.photos")
        with self.uow.read() as r:
            rels = r.gallery.photos(person_id)
        data = [self.ctx.media.read_encrypted(rel, cipher=self.ctx.cipher) for rel in rels]
        self.uow.record(actor, "media.export", object=f"person:{person_id}", details={"files": len(data)})
        return data

    def load(self, camera: str | None = None) -> Gallery:
        """Approved, unexpired enrolments and watchlist entries in one index (enrolments only within their scope).

        With `face_fusion`, one index per face model over the same people, searched together.
        """
        with self.uow.read() as r:
            parts, people = self._parts(r, camera)
        return self._build(parts, people)

    def _build(self, parts: list[Templates], people: list[Identity]) -> Gallery:
        built = [build_gallery(templates, owners, people) for templates, owners in parts]
        fusion = self.ctx.models.face_fusion
        return built[0] if fusion is None else FusedGallery(built, fusion)

    def change_head(self) -> int:
        """The gallery change feed's newest id: a camera loading its gallery now has seen every change up to it."""
        with self.uow.read() as r:
            return r.changes.head()

    def updated(self, camera: str, gallery: Gallery, seen: int) -> tuple[Gallery, int] | None:
        """`gallery` with what changed after change `seen` applied, and the last change applied; None: nothing new.

        Only the changed enrolments and watchlist entries are read and decrypted; everyone else's templates are
        carried over from `gallery`. A camera more than the feed's length behind loads the whole gallery again.
        Applying a change twice is harmless (each changed subject is read as it is now).
        """
        olds = gallery.parts if isinstance(gallery, FusedGallery) else [gallery]
        with self.uow.read() as r:
            changes = r.changes.after(seen)
            if not changes:
                return None
            last = changes[-1][0]
            trimmed = r.changes.oldest() > seen + 1  # the feed was trimmed past us (or ids skipped: reload, harmless)
            if trimmed or len(olds) != len(self.ctx.config.face_models):
                parts, people = self._parts(r, camera)
                return self._build(parts, people), max(last, r.changes.head())
            persons = {int(s.split(":", 1)[1]) for _, s in changes if s.startswith("person:")}
            entries = {int(s.split(":", 1)[1]) for _, s in changes if s.startswith("watchlist:")}
            new_parts, new_people = self._parts(r, camera, persons=persons, entries=entries)
        keep = [
            i
            for i, p in enumerate(gallery.people)
            if p.person_id not in (entries if p.kind == "watchlist" else persons)
        ]
        remap = np.full(len(gallery.people), -1, np.intp)
        remap[keep] = np.arange(len(keep), dtype=np.intp)
        merged: list[Templates] = []
        for old, (new_templates, new_owners) in zip(olds, new_parts, strict=True):
            kept = remap[old.owners] >= 0
            templates = np.concatenate([old.templates[kept], new_templates]).astype(np.float32)
            owners = np.concatenate([remap[old.owners[kept]], new_owners + len(keep)]).astype(np.intp)
            merged.append((templates, owners))
        people = [gallery.people[i] for i in keep] + new_people
        return self._build(merged, people), last

    def _parts(
        self,
        r: Work,
        camera: str | None,
        *,
        persons: set[int] | None = None,
        entries: set[int] | None = None,
        everyone: bool = False,
    ) -> tuple[list[Templates], list[Identity]]:
        """Each face model's decrypted templates and their owners, over one list of people.

        Everyone in force (enrolments within `camera`'s scope), or just `persons` and `entries`; with `everyone`,
        every enrolment and face watchlist entry whatever its status (a subject search). A person or entry
        lacking one model's templates (enrolled before `face_fusion` was set) has none in that model's part.
        """
        ctx = self.ctx
        purpose = ctx.camera_config(camera).purpose if camera is not None else ""
        now = ctx.now()
        people: list[Identity] = []
        index: dict[tuple[str, int], int] = {}
        parts: list[Templates] = []
        for model in ctx.config.face_models:
            if everyone:
                people_gallery = r.gallery.load(model=model, cipher=ctx.cipher)
                wl_people, blobs, wl_owners = r.watchlists.all_identities(
                    model=model, policy=ctx.policy, cipher=ctx.cipher
                )
            else:
                people_gallery = r.gallery.load(
                    model=model, cipher=ctx.cipher, active_at=now, camera=camera, purpose=purpose, only=persons
                )
                if entries is None or entries:
                    wl_people, blobs, wl_owners = r.watchlists.active_identities(
                        model=model, now=now, policy=ctx.policy, cipher=ctx.cipher, only=entries
                    )
                else:
                    wl_people, blobs, wl_owners = [], [], []
            local = list(people_gallery.people) + wl_people
            common = np.zeros(len(local), np.intp)
            for i, p in enumerate(local):
                key = (p.kind, p.person_id)
                if key not in index:
                    index[key] = len(people)
                    people.append(p)
                common[i] = index[key]
            offset = len(people_gallery.people)
            vectors = [people_gallery.templates] + [np.frombuffer(b, dtype="<f4")[None, :] for b in blobs]
            templates = np.concatenate(vectors).astype(np.float32) if blobs else people_gallery.templates
            local_owners = np.concatenate([people_gallery.owners, np.asarray(wl_owners, np.intp) + offset])
            parts.append((templates, common[local_owners.astype(np.intp)]))
        return parts, people

    def of_rows(self, rows: NDArray[np.float32], identity: Identity) -> Gallery:
        """A gallery of one identity from descriptor rows as tracks carry them (every fused model side by side)."""
        dims = [embedder.dim for _, embedder in self.ctx.models.face_models]
        splits = np.cumsum(dims)[:-1].tolist()
        owners = np.zeros(len(rows), np.intp)
        return self._build([(np.ascontiguousarray(p), owners) for p in np.split(rows, splits, axis=1)], [identity])

    def everyone(self) -> Gallery:
        """Every enrolment and face watchlist entry, whatever its status, in one index (subject access)."""
        with self.uow.read() as r:
            parts, people = self._parts(r, None, everyone=True)
        return self._build(parts, people)

    def person_active(self, person_id: int, camera: str) -> bool:
        """Whether an enrolment is approved, unexpired and covers `camera` now (checked at each decision)."""
        with self.uow.read() as r:
            scope = r.gallery.active_scope(person_id, self.ctx.now())
        purpose = self.ctx.camera_config(camera).purpose
        return scope is not None and in_scope(scope, camera=camera, purpose=purpose)

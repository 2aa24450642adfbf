"""Enrolments (people) and their encrypted face templates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from kuzet.core.errors import EnrolmentError, NotFoundError
from kuzet.core.i18n import Phrase
from kuzet.core.timeutil import aware, iso_utc
from kuzet.core.types import Identity
from kuzet.governance.approval import APPROVED, PENDING, REJECTED
from kuzet.governance.enrolment import in_scope
from kuzet.recognize.gallery import NumpyGallery
from kuzet.store.crypto import DataCipher, blob_key_id
from kuzet.store.models import PersonRow, TemplateRow
from kuzet.store.repositories.changes import ChangeFeed


@dataclass(frozen=True, slots=True)
class NewTemplate:
    """A descriptor to store, with the hash of the photo it came from and the model that made it ("": the default)."""

    vector: NDArray[np.float32]
    photo_sha256: str
    model: str = ""


@dataclass(frozen=True, slots=True)
class PersonSummary:
    """An enrolment as people see it: who, how many templates, its status, consent, scope and expiry."""

    identity: Identity
    templates: int
    created_at: str
    status: str = APPROVED
    consent: str = ""
    scope: list[str] = field(default_factory=lambda: ["*"])
    expires_at: str = ""
    requester_id: int | None = None
    approver_id: int | None = None
    decision_reason: str = ""
    photos: int = 0


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What an enrolment row records besides its templates."""

    consent: str = "consent"
    scope: tuple[str, ...] = ("*",)
    expires_at: datetime | None = None
    requester_id: int | None = None
    photos: tuple[str, ...] = ()


class GalleryRepository:
    """People (enrolments) and their face templates."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_templates(
        self,
        name: str,
        templates: list[NewTemplate],
        *,
        model: str,
        cipher: DataCipher,
        consent: str = "consent",
        enrolled_by: int | None = None,
        enrolment: Enrolment | None = None,
        now: datetime,
    ) -> tuple[Identity, int]:
        """Create a pending enrolment (or renew a rejected or expired one of that name) with its templates.

        Each template is stored under its own `model`, else `model`. A template whose photo is already among the
        person's (for that model) is skipped.

        Returns:
            The person and the number of templates actually added.

        Raises:
            EnrolmentError: The name is already enrolled, pending or approved.
        """
        enrolment = enrolment or Enrolment(consent=consent, requester_id=enrolled_by)
        person = self.session.scalar(select(PersonRow).where(PersonRow.name == name))
        if person is not None and person.status in (PENDING, APPROVED):
            raise EnrolmentError(
                Phrase(
                    "{name!r} is already enrolled (person {person}, {status})",
                    name=name,
                    person=person.id,
                    status=Phrase(person.status),
                ),
                hint="an enrolment is renewed once it has expired or been rejected",
            )
        if person is None:
            person = PersonRow(name=name, created_at=now)
            self.session.add(person)
        person.status = PENDING
        person.consent_basis = enrolment.consent
        person.enrolled_by = enrolment.requester_id
        person.scope = json.dumps(list(enrolment.scope))
        person.expires_at = enrolment.expires_at
        person.approver_id = None
        person.decision_reason = ""
        person.decided_at = None
        person.photos = json.dumps(list(enrolment.photos))
        self.session.flush()
        stored = select(TemplateRow.model, TemplateRow.photo_sha256).where(TemplateRow.person_id == person.id)
        known = {(m, sha) for m, sha in self.session.execute(stored)}
        added = 0
        for t in templates:
            key = (t.model or model, t.photo_sha256)
            if key in known:
                continue
            known.add(key)
            vec = np.ascontiguousarray(t.vector, dtype="<f4")
            self.session.add(
                TemplateRow(
                    person_id=person.id,
                    model=key[0],
                    dim=int(vec.shape[0]),
                    vector=cipher.encrypt(vec.tobytes(), context=f"person:{person.id}"),
                    photo_sha256=t.photo_sha256,
                    created_at=now,
                )
            )
            added += 1
        self.session.flush()
        return Identity(person_id=person.id, name=person.name), added

    def lacking(self, models: tuple[str, ...]) -> list[tuple[int, list[str], list[str]]]:
        """Pending and approved enrolments lacking templates of some of `models`: (id, models lacking, photos)."""
        have: dict[int, set[str]] = {}
        for person_id, model in self.session.execute(select(TemplateRow.person_id, TemplateRow.model).distinct()):
            have.setdefault(person_id, set()).add(model)
        rows = self.session.scalars(
            select(PersonRow).where(PersonRow.status.in_([PENDING, APPROVED])).order_by(PersonRow.id)
        )
        out = []
        for row in rows:
            missing = [m for m in models if m not in have.get(row.id, set())]
            if missing:
                out.append((row.id, missing, list(json.loads(row.photos))))
        return out

    def add_model_templates(
        self, person_id: int, templates: list[tuple[str, NewTemplate]], *, cipher: DataCipher, now: datetime
    ) -> int:
        """Add templates of models an enrolment lacks, each made from one of its stored photos.

        Checked here, inside the writing transaction: the enrolment is pending or approved and unexpired, each
        template's photo (media path, first of each pair) is still among its photos (not another enrolment's after a
        rejection and renewal under the same id), and its model still has no template (a concurrent run added none).

        Returns:
            How many were added.
        """
        row = self.session.get(PersonRow, person_id)
        if row is None or row.status not in (PENDING, APPROVED):
            return 0
        if row.expires_at is not None and aware(row.expires_at) <= now:
            return 0
        photos = set(json.loads(row.photos))
        present = set(self.session.scalars(select(TemplateRow.model).where(TemplateRow.person_id == person_id)))
        added = 0
        for photo, t in templates:
            if photo not in photos or t.model in present:
                continue
            vec = np.ascontiguousarray(t.vector, dtype="<f4")
            self.session.add(
                TemplateRow(
                    person_id=person_id,
                    model=t.model,
                    dim=int(vec.shape[0]),
                    vector=cipher.encrypt(vec.tobytes(), context=f"person:{person_id}"),
                    photo_sha256=t.photo_sha256,
                    created_at=now,
                )
            )
            added += 1
        if added:
            ChangeFeed(self.session).note(f"person:{person_id}")
            self.session.flush()
        return added

    def get_row(self, person_id: int) -> PersonRow:
        """The enrolment row, or NotFoundError."""
        row = self.session.get(PersonRow, person_id)
        if row is None:
            raise NotFoundError(Phrase("person {person} does not exist", person=person_id), hint="see `kuzet people`")
        return row

    def destroy_templates(self, person_id: int) -> int:
        """Delete a person's templates; returns how many."""
        rows = list(self.session.scalars(select(TemplateRow).where(TemplateRow.person_id == person_id)))
        for r in rows:
            self.session.delete(r)
        ChangeFeed(self.session).note(f"person:{person_id}")
        self.session.flush()
        return len(rows)

    def template_count(self) -> int:
        """How many templates are stored (any model)."""
        return int(self.session.scalar(select(func.count()).select_from(TemplateRow)) or 0)

    def reencrypt(self, ring: DataCipher) -> int:
        """Re-encrypt every template not under the ring's active key; returns how many."""
        n = 0
        for row in self.session.scalars(select(TemplateRow)):
            if blob_key_id(row.vector) != ring.active:
                context = f"person:{row.person_id}"
                row.vector = ring.encrypt(ring.decrypt(row.vector, context=context), context=context)
                n += 1
        return n

    def key_ids(self) -> set[str]:
        """Ids of the data keys the templates are encrypted with."""
        return {blob_key_id(v) for v in self.session.scalars(select(TemplateRow.vector))}

    def status_of(self, person_id: int) -> tuple[str, int | None]:
        """An enrolment's status and who requested it (NotFoundError when there is none)."""
        row = self.get_row(person_id)
        return row.status, row.enrolled_by

    def decide(
        self, person_id: int, *, approve: bool, approver_id: int, reason: str, now: datetime
    ) -> tuple[int, list[str], str]:
        """Approve or reject an enrolment; a rejection destroys its templates and lets go of its photos.

        Returns:
            Templates destroyed, the photos (media paths) to delete, and the enrolment's scope (JSON).
        """
        row = self.get_row(person_id)
        destroyed, photos = 0, []
        if not approve:
            destroyed = self.destroy_templates(person_id)
            photos, row.photos = json.loads(row.photos), "[]"
        row.status = APPROVED if approve else REJECTED
        ChangeFeed(self.session).note(f"person:{person_id}")
        row.approver_id = approver_id
        row.decision_reason = reason
        row.decided_at = now
        return destroyed, photos, row.scope

    def expire_due(self, now: datetime) -> list[tuple[int, int, list[str], datetime]]:
        """Expire every enrolment past its expiry (templates destroyed).

        Returns:
            For each: its id, templates destroyed, the photos (media paths) to delete, and when it expired.
        """
        out = []
        for row in self.due_for_expiry(now):
            destroyed = self.destroy_templates(row.id)
            photos, row.photos = json.loads(row.photos), "[]"
            row.status = "expired"
            row.decided_at = now
            assert row.expires_at is not None
            out.append((row.id, destroyed, photos, row.expires_at))
        return out

    def photos(self, person_id: int) -> list[str]:
        """The media paths of an enrolment's photos."""
        return list(json.loads(self.get_row(person_id).photos))

    def active_scope(self, person_id: int, now: datetime) -> list[str] | None:
        """The scope of an approved, unexpired enrolment; None when it is not (or no longer) in force."""
        row = self.session.get(PersonRow, person_id)
        if row is None or row.status != APPROVED:
            return None
        if row.expires_at is not None and aware(row.expires_at) <= now:
            return None
        return list(json.loads(row.scope))

    def due_for_expiry(self, now: datetime) -> list[PersonRow]:
        """Pending or approved enrolments whose expiry has passed."""
        return list(
            self.session.scalars(
                select(PersonRow).where(
                    PersonRow.status.in_([PENDING, APPROVED]),
                    PersonRow.expires_at.is_not(None),
                    PersonRow.expires_at <= now,
                )
            )
        )

    def load(
        self,
        *,
        model: str,
        cipher: DataCipher,
        active_at: datetime | None = None,
        camera: str | None = None,
        purpose: str = "",
        only: set[int] | None = None,
    ) -> NumpyGallery:
        """Templates made by `model`, decrypted into an in-memory index.

        With `active_at`, only approved enrolments unexpired at that moment, and (with `camera`) only those whose
        scope covers the camera; without, everyone with templates (subject access needs them all). With `only`,
        just those people (a camera updating its gallery with what changed).
        """
        query = (
            select(TemplateRow.person_id, TemplateRow.vector, PersonRow.name, PersonRow.scope)
            .join(PersonRow, PersonRow.id == TemplateRow.person_id)
            .where(TemplateRow.model == model)
            .order_by(TemplateRow.person_id, TemplateRow.id)
        )
        if only is not None:
            query = query.where(TemplateRow.person_id.in_(sorted(only)))
        if active_at is not None:
            query = query.where(
                PersonRow.status == APPROVED,
                (PersonRow.expires_at.is_(None)) | (PersonRow.expires_at > active_at),
            )
        people: list[Identity] = []
        index: dict[int, int] = {}
        vectors = []
        owners = []
        for person_id, blob, name, scope in self.session.execute(query).all():
            if camera is not None and not in_scope(json.loads(scope), camera=camera, purpose=purpose):
                continue
            if person_id not in index:
                index[person_id] = len(people)
                people.append(Identity(person_id=person_id, name=name))
            vectors.append(np.frombuffer(cipher.decrypt(blob, context=f"person:{person_id}"), dtype="<f4"))
            owners.append(index[person_id])
        templates = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 128), np.float32)
        return NumpyGallery(templates, np.asarray(owners, np.intp), people)

    def people(self, *, status: str | None = None, model: str | None = None) -> list[PersonSummary]:
        """Every enrolment, by name, with its templates (of `model` only, when given: one per photo)."""
        joined = TemplateRow.person_id == PersonRow.id
        if model is not None:
            joined = and_(joined, TemplateRow.model == model)
        query = (
            select(PersonRow, func.count(TemplateRow.id))
            .outerjoin(TemplateRow, joined)
            .group_by(PersonRow.id)
            .order_by(PersonRow.name)
        )
        if status:
            query = query.where(PersonRow.status == status)
        return [
            PersonSummary(
                identity=Identity(p.id, p.name),
                templates=int(n),
                created_at=iso_utc(p.created_at),
                status=p.status,
                consent=p.consent_basis,
                scope=json.loads(p.scope),
                expires_at=iso_utc(p.expires_at) if p.expires_at is not None else "",
                requester_id=p.enrolled_by,
                approver_id=p.approver_id,
                decision_reason=p.decision_reason,
                photos=len(json.loads(p.photos)),
            )
            for p, n in self.session.execute(query).all()
        ]

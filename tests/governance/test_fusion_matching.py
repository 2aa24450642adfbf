"""Two face models in production (`face_fusion`): templates of each, fused scores, calibrated thresholds, re-embedding.

Real photos (LFW, the face_recognition examples), the production detector, dlib's network and SFace. The fused gallery
is checked against the fusion rule computed by hand, and attacked as an insider would: a person enrolled before the
second model was configured matches nobody until an administrator re-embeds their stored photos (audited), and an
operator may not do it.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from kuzet.app import Kuzet
from kuzet.config.models import FaceFusionConfig, KuzetConfig, SFaceConfig
from kuzet.core.errors import ConfigError, PermissionDenied
from kuzet.core.types import Identity, User
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.governance.policy import load_policy
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.recognize import FaceEmbedder, build_face_aligner, build_face_embedder
from kuzet.recognize.fusion import load_fusion
from kuzet.recognize.gallery import FusedGallery, NumpyGallery
from kuzet.services.context import Models
from kuzet.store.models import TemplateRow, WatchlistTemplateRow
from kuzet.store.repositories.gallery import NewTemplate
from tests.conftest import PASSWORD, add_user, admin_of, enrol, share_models, utc_today

pytestmark = pytest.mark.store

LFW = "lfw_original_10id"
FUSED = KuzetConfig(face_fusion=FaceFusionConfig())


def _unit(rng: np.random.Generator, n: int, d: int = 128) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_fused_gallery_scores_each_person_by_the_fusion_of_each_models_best_template() -> None:
    rng = np.random.default_rng(3)
    fusion = load_fusion()
    people = [Identity(i, f"p{i}") for i in range(5)]
    a, b = _unit(rng, 8), _unit(rng, 8)
    owners = np.array([0, 0, 1, 2, 2, 3, 3, 4], np.intp)
    # Person 4 has no template of the second model (enrolled before it was configured).
    index = FusedGallery([NumpyGallery(a, owners, people), NumpyGallery(b[:7], owners[:7], people)], fusion)
    queries = np.concatenate([_unit(rng, 3), _unit(rng, 3)], axis=1)
    queries[0] = np.concatenate([a[2], b[2]])  # person 1's own photo
    persons, sims = index.search(queries)
    assert persons.tolist() == [0, 1, 2, 3, 4]
    for q in range(3):
        for p in range(4):
            best_a = max(float(queries[q, :128] @ a[t]) for t in np.flatnonzero(owners == p))
            best_b = max(float(queries[q, 128:] @ b[t]) for t in np.flatnonzero(owners[:7] == p))
            want = fusion.fuse({"dlib-resnet": np.array([best_a]), "sface": np.array([best_b])})[0]
            assert sims[q, p] == pytest.approx(want, abs=1e-5)
    assert int(np.argmax(sims[0])) == 1 and sims[0, 1] > 1.0  # its own photo: above a typical genuine pair
    # No second-model template: that model scores -1, and not even a perfect first-model match reaches a threshold.
    alone = np.array([max(float(queries[q, :128] @ a[7]), -1.0) for q in range(3)])
    want = fusion.fuse({"dlib-resnet": alone, "sface": np.full(3, -1.0)})
    assert sims[:, 4] == pytest.approx(want, abs=1e-5)
    best_case = fusion.fuse({"dlib-resnet": np.array([1.0]), "sface": np.array([-1.0])})[0]
    assert best_case < FaceFusionConfig().threshold
    with pytest.raises(ValueError, match="same people"):
        FusedGallery([NumpyGallery(a, owners, people), NumpyGallery(b, owners, [*people[:4], people[0]])], fusion)


@pytest.fixture(scope="module")
def sface() -> FaceEmbedder:
    return build_face_embedder(SFaceConfig())


def _fused(path: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder, sface: FaceEmbedder) -> Kuzet:
    svc = share_models(Kuzet(path, FUSED), centerface, embedder)
    svc.ctx.models.__dict__["face_extra"] = [(build_face_aligner(SFaceConfig()), sface)]
    return svc


@pytest.fixture
def fused(
    tmp_path: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder, sface: FaceEmbedder
) -> Iterator[Kuzet]:
    svc = _fused(tmp_path / "data", centerface, embedder, sface)
    svc.init_admin("admin", PASSWORD)
    yield svc
    svc.close()


def _models(svc: Kuzet, row: type[TemplateRow] | type[WatchlistTemplateRow]) -> list[str]:
    with svc.services.uow.read() as r:
        return sorted(m for (m,) in r.session.execute(r.session.query(row.model).statement))


def _stock(svc: Kuzet, lfw: Path) -> tuple[User, int]:
    """Colin Powell enrolled and G. W. B. on the wanted list, each approved by a second person: (operator, entry)."""
    op, req = add_user(svc, "olga", "operator"), add_user(svc, "rustam", "requester")
    appr = add_user(svc, "aigul", "approver")
    enrol(svc, op, "Colin Powell", [lfw / "Colin_Powell" / "Colin_Powell_0001.jpg"])
    request = WatchlistRequest(
        list_name="wanted", subject_name="G. W. B.", category="wanted-person", legal_basis="court-order",
        reference="2-345/2026", authority="Almaty city court", expires=utc_today() + timedelta(days=60), note="",
    )  # fmt: skip
    entry = svc.watchlist_request(req, request, lfw / "George_W_Bush" / "George_W_Bush_0001.jpg")
    svc.watchlist_approve(appr, entry, reason="court order checked with the court")
    return op, entry


def test_fused_matching_end_to_end_names_the_enrolled_and_alerts_on_the_watchlist_with_a_declared_rate(
    fused: Kuzet, faces_dir: Path
) -> None:
    svc, lfw = fused, faces_dir / LFW
    gallery = svc.services.gallery
    seen, before = gallery.change_head(), gallery.load("default")  # a running camera's gallery, still empty
    op, _ = _stock(svc, lfw)
    assert _models(svc, TemplateRow) == ["dlib-resnet", "sface"]  # one template per model per photo
    assert _models(svc, WatchlistTemplateRow) == ["dlib-resnet", "sface"]

    powell = svc.analyze(op, str(lfw / "Colin_Powell" / "Colin_Powell_0002.jpg"))
    assert [e.identity for e in powell.events] == ["Colin Powell"]
    assert powell.events[0].score >= svc.ctx.config.match_threshold == FaceFusionConfig().threshold
    assert powell.alert_ids == []
    other = svc.analyze(op, str(lfw / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg"))
    assert other.events == [] and other.alert_ids == [] and other.stats.unknown_tracks == 1

    (alert_id,) = svc.analyze(op, str(lfw / "George_W_Bush" / "George_W_Bush_0002.jpg")).alert_ids
    policy = svc.ctx.policy
    assert policy.calibration is not None and policy.calibration.embedder == "fusion(dlib-resnet+sface)"
    rev = add_user(svc, "marat", "reviewer")
    (alert,) = [a for a in svc.services.review.list(rev) if a.alert_id == alert_id]
    assert alert.threshold == pytest.approx(policy.threshold("wanted-person"), abs=1e-9)
    assert alert.score >= alert.threshold and alert.false_match_rate == 0.001

    # A running camera's fused gallery, updated from the change feed, scores as one loaded afresh.
    got = gallery.updated("default", before, seen)
    assert got is not None and isinstance(got[0], FusedGallery)
    fresh = gallery.load("default")
    vectors, _, _ = gallery.face_template(lfw / "Colin_Powell" / "Colin_Powell_0003.jpg")
    query = np.concatenate([vectors["dlib-resnet"], vectors["sface"]])[None, :]
    scored = {
        (p.kind, p.person_id): float(s)
        for p, s in zip(got[0].people, got[0].person_similarities(query)[0], strict=True)
    }
    assert scored == pytest.approx(
        {
            (p.kind, p.person_id): float(s)
            for p, s in zip(fresh.people, fresh.person_similarities(query)[0], strict=True)
        }
    )
    # A subject search scores as cameras do: Colin Powell's photo finds his enrolment, not the watchlist entry.
    people, entries = svc.services.subjects.matches(lfw / "Colin_Powell" / "Colin_Powell_0003.jpg")
    assert [p[1] for p in people] == ["Colin Powell"] and entries == []
    assert [e[1] for e in svc.services.subjects.matches(lfw / "George_W_Bush" / "George_W_Bush_0003.jpg")[1]] == [
        "G. W. B."
    ]

    # A wrong-match mark keeps the fused descriptors and is compared in fused units.
    svc.review(rev, alert_id, "reject", reason="marked to test the mark under fusion", wrong_match=True)
    rev2 = add_user(svc, "saule", "reviewer")
    svc.services.review.decide_mark(rev2, alert_id, "approve", reason="second look: the mark holds")
    assert svc.analyze(op, str(lfw / "George_W_Bush" / "George_W_Bush_0002.jpg")).alert_ids == []
    aud = add_user(svc, "timur", "auditor")
    (why,) = [dict(e.details or {}) for e in svc.audit_log(aud, action="alert.suppressed")]
    assert float(str(why["similarity"])) >= float(str(why["score"])) >= alert.threshold


def test_people_enrolled_before_fusion_match_only_once_an_administrator_reembeds_their_photos(
    tmp_path: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder, sface: FaceEmbedder, faces_dir: Path
) -> None:
    lfw = faces_dir / LFW
    plain = share_models(Kuzet(tmp_path / "data"), centerface, embedder)
    plain.init_admin("admin", PASSWORD)
    op, entry = _stock(plain, lfw)
    plain.close()

    svc = _fused(tmp_path / "data", centerface, embedder, sface)  # the integrator turns fusion on
    powell = str(lfw / "Colin_Powell" / "Colin_Powell_0002.jpg")
    bush = str(lfw / "George_W_Bush" / "George_W_Bush_0002.jpg")
    assert svc.analyze(op, powell).events == []  # no SFace template: no match (unknown faces are only counted)
    assert svc.analyze(op, bush).alert_ids == []
    # A person asking what kuzet holds is still found, by the first model alone, before any re-embedding.
    people, _ = svc.services.subjects.matches(Path(powell))
    assert [p[1] for p in people] == ["Colin Powell"] and people[0][2] >= svc.ctx.config.recognition.threshold
    assert [e[1] for e in svc.services.subjects.matches(Path(bush))[1]] == ["G. W. B."]
    # Templates are added only from the subject's own stored photo, while it is in force.
    (person_id,) = [p.identity.person_id for p in svc.people(admin_of(svc))]
    stray = NewTemplate(vector=np.ones(128, np.float32) / np.sqrt(128), photo_sha256="x", model="sface")
    with svc.services.uow.tx() as w:
        now = svc.ctx.now()
        assert (
            w.gallery.add_model_templates(
                person_id, [("enrolment/not-its-photo.enc", stray)], cipher=svc.ctx.cipher, now=now
            )
            == 0
        )
        assert not w.watchlists.add_model_template(
            entry,
            model="sface",
            template=b"x" * 512,
            photo="watchlist/not-its-photo.enc",
            cipher=svc.ctx.cipher,
            now=now,
        )
    assert _models(svc, TemplateRow) == ["dlib-resnet"]
    with pytest.raises(PermissionDenied):
        svc.services.gallery.reembed(op)  # an operator may not make templates
    done = svc.services.gallery.reembed(admin_of(svc))
    assert (done.people, done.entries, done.templates, done.failed) == (1, 1, 2, [])
    assert _models(svc, TemplateRow) == ["dlib-resnet", "sface"]
    assert _models(svc, WatchlistTemplateRow) == ["dlib-resnet", "sface"]
    assert svc.services.gallery.reembed(admin_of(svc)).templates == 0  # nothing left to add
    assert [e.identity for e in svc.analyze(op, powell).events] == ["Colin Powell"]
    assert len(svc.analyze(op, bush).alert_ids) == 1
    aud = add_user(svc, "timur", "auditor")
    logged = [e for e in svc.audit_log(aud) if e.action == "templates.reembed"]
    assert sorted((e.actor, e.object) for e in logged) == [
        ("admin", f"person:{person_id}"),
        ("admin", f"watchlist:{entry}"),
    ]
    assert all(e.details is not None and e.details["templates_added"] == 1 for e in logged)
    assert svc.audit_verify(aud).ok
    svc.close()


def test_fusion_refuses_raw_cosine_thresholds_mismatched_constants_and_one_model_twice(tmp_path: Path) -> None:
    default = importlib.resources.files("kuzet.governance").joinpath("default_policy.yaml").read_text()
    policy = yaml.safe_load(default)
    policy["categories"]["wanted-person"].pop("false_match_rate")
    policy["categories"]["wanted-person"]["threshold"] = 0.9
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    raw = load_policy(path, matcher=FUSED.face_matcher)
    with pytest.raises(ConfigError, match="wanted-person give a cosine threshold"):
        raw.check_embedder(FUSED.face_matcher)
    load_policy(path).check_embedder("dlib-resnet")  # one model: a cosine threshold means what it says
    dlib_calibrated = load_policy(None)
    with pytest.raises(ConfigError, match="measured with the dlib-resnet embedder"):
        dlib_calibrated.check_embedder(FUSED.face_matcher)
    with pytest.raises(ValueError, match="fusion needs a second, different model"):
        KuzetConfig.model_validate({"face_fusion": {"embedder": {"type": "dlib-resnet"}}})
    swapped = KuzetConfig.model_validate(
        {"face_embedder": {"type": "sface"}, "face_fusion": {"embedder": {"type": "dlib-resnet"}}}
    )
    with pytest.raises(ConfigError, match="fusion constants fuse dlib-resnet and sface"):
        _ = Models(swapped).face_extra
    # Constants of one's own change what every score means: the shipped fusion calibration is refused for them.
    shipped = json.loads(importlib.resources.files("kuzet.governance").joinpath("fusion.json").read_text())
    shipped["models"][0]["weight"] = 0.9
    own = tmp_path / "own-fusion.json"
    own.write_text(json.dumps(shipped))
    custom = KuzetConfig.model_validate({"face_fusion": {"constants": str(own)}})
    assert custom.face_matcher.startswith("fusion(dlib-resnet+sface)@") and len(custom.face_matcher) == 38
    with pytest.raises(ConfigError, match="measured with the dlib-resnet embedder"):
        load_policy(None, matcher=custom.face_matcher).check_embedder(custom.face_matcher)
    shipped["models"][1]["weight"] = 0.0
    own.write_text(json.dumps(shipped))
    with pytest.raises(ConfigError, match="positive scales and weights"):
        load_fusion(own)


def test_a_subject_search_reads_face_templates_only_beside_a_plate_entry(service: Kuzet, faces_dir: Path) -> None:
    """Subject search once read every watchlist template as a face vector: one plate entry made it fail."""
    lfw = faces_dir / LFW
    _, entry = _stock(service, lfw)
    stolen = WatchlistRequest(
        list_name="stolen", subject_name="white Lada Vesta", category="stolen-vehicle",
        legal_basis="stolen-vehicle-report", reference="KUSP-1234", authority="Almaty police",
        expires=utc_today() + timedelta(days=30), note="",
    )  # fmt: skip
    plate = service.watchlist_request(add_user(service, "aliya", "requester"), stolen, plate="123ABC02")
    service.watchlist_approve(add_user(service, "erlan", "approver"), plate, reason="report KUSP-1234 checked")
    people, entries = service.services.subjects.matches(lfw / "George_W_Bush" / "George_W_Bush_0003.jpg")
    assert people == [] and [e[0] for e in entries] == [entry]

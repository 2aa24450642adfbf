"""The data directory is its owner's alone, whatever the umask (finding 7), and no face is kept in the clear."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuzet.app import Kuzet
from kuzet.cli.main import app
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.recognize import FaceEmbedder
from tests.conftest import PASSWORD, add_user, share_models, utc_today
from tests.support.rawdb import on_postgres, raw_db

pytestmark = pytest.mark.store

EXAMPLES = "face_recognition_examples"


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual 022 umask, under which files are created world-readable unless their mode is set."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_every_file_is_owner_only_whatever_the_umask(
    tmp_path: Path, faces_dir: Path, loose_umask: None, centerface: CenterFaceDetector, embedder: FaceEmbedder
) -> None:
    data = tmp_path / "data"
    svc = share_models(Kuzet(data), centerface, embedder)
    admin = svc.init_admin("admin", PASSWORD)
    requester, approver = add_user(svc, "rustam", "requester"), add_user(svc, "aigul", "approver")
    operator = add_user(svc, "olga", "operator")
    photo = faces_dir / EXAMPLES / "lin-manuel-miranda.png"
    svc.enroll(operator, "Staff", [faces_dir / EXAMPLES / "alex-lacamoire.png"], consent="form 1")
    entry = svc.watchlist_request(
        requester,
        WatchlistRequest(
            "l", "Lin", "missing-person", "missing-person-report", "1", "police", utc_today() + timedelta(9)
        ),
        photo,
    )
    svc.watchlist_approve(approver, entry, reason="court order checked")
    svc.analyze(admin, str(photo))  # an alert: snapshots and encrypted originals
    svc.close()
    login = CliRunner().invoke(
        app, ["--data-dir", str(data), "login", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert login.exit_code == 0
    modes = _modes(data)
    assert len(modes) > 15
    loose = {name: oct(m) for name, m in modes.items() if m & 0o077}
    assert not loose, loose  # nothing readable, writable or searchable by the group or others
    assert all(m == 0o700 for n, m in modes.items() if (data / n).is_dir() or n == ".")
    # The watchlist photo is not a JPEG anyone with the files could look at.
    photos = list((data / "media" / "watchlist").rglob("*"))
    assert photos and all(p.name.endswith(".jpg.enc") and p.read_bytes()[:3] == b"KZ1" for p in photos if p.is_file())


def test_an_old_readable_data_directory_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"
    svc = Kuzet(data)
    svc.init_admin("admin", PASSWORD)
    svc.close()
    sqlite = not on_postgres()  # on PostgreSQL the store is not a file of the data directory
    for path in [data, data / "media", *([data / "kuzet.db"] * sqlite), data / "audit" / "checkpoints.jsonl"]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    token = data / "session.token"
    token.write_text("stale\n")
    token.chmod(0o644)
    runner = CliRunner()
    result = runner.invoke(app, ["--data-dir", str(data), "login", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert not sqlite or stat.S_IMODE((data / "kuzet.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(token.stat().st_mode) == 0o600  # finding 9: `kuzet login` tightens an existing 0644 token
    assert stat.S_IMODE((data / "audit" / "checkpoints.jsonl").stat().st_mode) == 0o600


def test_plain_watchlist_photos_of_an_older_kuzet_are_encrypted(
    tmp_path: Path, faces_dir: Path, centerface: CenterFaceDetector, embedder: FaceEmbedder
) -> None:
    data = tmp_path / "data"
    svc = share_models(Kuzet(data), centerface, embedder)
    svc.init_admin("admin", PASSWORD)
    requester, approver = add_user(svc, "rustam", "requester"), add_user(svc, "aigul", "approver")
    entry = svc.watchlist_request(
        requester,
        WatchlistRequest(
            "l", "Lin", "missing-person", "missing-person-report", "1", "police", utc_today() + timedelta(9)
        ),
        faces_dir / EXAMPLES / "lin-manuel-miranda.png",
    )
    shown = svc.media_export(approver, "watchlist", entry, unredacted=False, justification="")[0]
    svc.close()
    # What an older kuzet left: the same photo as a plain JPEG.
    plain = data / "media" / "watchlist" / "old.jpg"
    plain.write_bytes(shown)
    with raw_db(data) as db:
        db.execute("UPDATE watchlist_entries SET photo = 'watchlist/old.jpg' WHERE id = ?", (entry,))
    svc = Kuzet(data)
    assert not plain.exists()
    assert svc.media_export(approver, "watchlist", entry, unredacted=False, justification="")[0] == shown
    assert "media.encrypted" in [e.action for e in svc.audit_log(add_user(svc, "timur", "auditor"))]
    svc.close()

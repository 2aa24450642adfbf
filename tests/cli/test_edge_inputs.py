"""Bad input on the command line: a clear error before any work is done, and nothing stored or overwritten.

Each case was a traceback, a silent wrong result or lost data before (a review that tried ~200 edge cases).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.cli.test_main import EXAMPLES, _as, _kuzet, _signed_in_operator


def _said(output: str) -> str:
    """The output as one line of words, without the boxes typer draws around a usage error."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_redact_never_replaces_its_source_and_checks_the_output_first(tmp_path: Path, faces_dir: Path) -> None:
    photo = tmp_path / "x.png"
    shutil.copy(faces_dir / EXAMPLES / "alex-lacamoire.png", photo)
    before = _digest(photo)
    (tmp_path / "link.png").symlink_to(photo)
    (tmp_path / "folder").mkdir()
    cases = {
        str(photo): "the source file itself",
        str(tmp_path / "link.png"): "the source file itself",
        str(tmp_path / "out.txt"): "name it with one of .jpg",
        str(tmp_path / "out.mp4"): "cannot write a redacted image",
        str(tmp_path / "no" / "x.jpg"): "does not exist",
        str(tmp_path / "folder"): "is a folder",
    }
    for out, said in cases.items():
        code, output = _kuzet(tmp_path / "d", "redact", str(photo), "-o", out)
        assert code != 0 and said in _said(output), (out, output)
    assert _digest(photo) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "link.png", "x.png"]


def test_the_demo_leaves_a_folder_named_demo_alone_unless_it_is_an_old_demo(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "important.txt").write_text("precious")
    code, out = _kuzet(root, "demo", "--no-serve")
    assert code != 0 and "not kuzet's demo" in out
    assert (root / "demo" / "important.txt").read_text() == "precious"
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    code, out = _kuzet(a_file, "demo", "--no-serve")
    assert code != 0 and "is a file, not a folder" in out and a_file.read_text() == "x"


@pytest.mark.parametrize(
    "args",
    [
        ["media", "export", "event", "99999999999999999999", "-o", "out"],
        ["audit", "log", "--from", "99999999999999999999"],
        ["hold", "add", "--case", "c1", "--reason", "investigation 12345", "--event", "99999999999999999999"],
        ["review", "confirm", "99999999999999999999", "--reason", "the same person, checked"],
        ["people", "approve", "0"],
    ],
)
def test_an_id_out_of_range_is_refused_before_the_database_sees_it(tmp_path: Path, args: list[str]) -> None:
    code, out = _kuzet(tmp_path / "d", *args)
    assert code == 2 and re.search(r"(less|greater) than or equal to", _said(out)), out  # was an OverflowError


def test_an_output_in_a_missing_folder_is_refused_before_the_work(tmp_path: Path) -> None:
    code, out = _kuzet(
        tmp_path / "d", "report", "transparency", "--from", "2026-01-01", "--to", "2026-12-31", "-o", "no/r.json"
    )
    assert code == 2 and "the folder no does not exist" in _said(out)
    code, out = _kuzet(
        tmp_path / "d", "report", "transparency", "--from", "2026-01-01", "--to", "2026-12-31", "-o", "r.txt"
    )
    assert code == 2 and ".html, .json, .pdf" in _said(out)


@pytest.mark.store
def test_listings_refuse_an_unknown_status_and_analysis_a_bad_camera_name(tmp_path: Path, faces_dir: Path) -> None:
    data = tmp_path / "d"
    _signed_in_operator(data)
    for args in (["people", "--status", "bogus"], ["watchlist", "show", "--status", "bogus"]):
        code, out = _as(data, "aigul", *args)  # the approver may see both
        assert code != 0 and "unknown status 'bogus'" in out and "pending" in out, (args, out)
    photo = str(faces_dir / EXAMPLES / "obama-480p.jpg")
    for camera in ("", "a\x1b[31mred", "../up", "x" * 65):
        code, out = _kuzet(data, "analyze", photo, "--camera", camera)
        assert code != 0 and "invalid camera name" in out, (camera, out)
    code, out = _kuzet(data, "analyze", photo, "--camera", "gate-2.north")
    assert code == 0, out


@pytest.mark.store
def test_releasing_a_case_without_holds_and_a_backwards_consistency_proof_are_errors(tmp_path: Path) -> None:
    """Both answered as if all was well: "released 0 hold(s)", and a proof of the pair swapped round."""
    data = tmp_path / "d"
    _signed_in_operator(data)
    code, out = _as(data, "root", "hold", "release", "--case", "nosuch", "--reason", "case closed by the court")
    assert code == 2 and "case 'nosuch' has no active hold to release" in out and "kuzet hold list" in out, out
    code, out = _as(data, "root", "audit", "consistency", "2", "1")
    assert code == 2 and "checkpoint 2" in out and "is newer than checkpoint 1" in out, out
    assert "kuzet audit consistency 1 2" in _said(out)
    code, out = _as(data, "root", "audit", "consistency", "1", "2")
    assert code == 0 and "CONSISTENT" in out, out


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        (["a1.jpg,ann", "a2.jpg,ann", "a3.jpg,ann"], r"labels one identity only \(ann\): different-person pairs"),
        (["a1.jpg,ann", "b1.jpg,bob", "c1.jpg,cem"], "no identity in .* has two or more photos"),
        (["a1.jpg,ann", "a1.jpg,bob"], "line 3: a1.jpg is listed twice"),
        (["a1.jpg,", "b1.jpg,bob"], "line 2: a row needs a file and an identity"),
    ],
)
def test_make_pairs_refuses_labels_that_cannot_give_both_kinds_of_pair(
    tmp_path: Path, rows: list[str], said: str
) -> None:
    """One person's photos gave same-person pairs only (or one photo each gave none at all), written with exit 0."""
    labels = tmp_path / "labels.csv"
    labels.write_text("file,identity\n" + "\n".join(rows) + "\n")
    code, out = _kuzet(tmp_path / "d", "eval", "make-pairs", "--labels", str(labels), "-o", str(tmp_path / "p.csv"))
    assert code == 2 and re.search(said, _said(out)), out
    assert not (tmp_path / "p.csv").exists()
    code, out = _kuzet(tmp_path / "d", "eval", "make-pairs", "--labels", str(tmp_path), "-o", str(tmp_path / "p.csv"))
    assert code == 2 and "cannot read labels file" in out, out


def test_serve_on_a_port_in_use_or_an_unknown_host_says_so_before_printing_where_it_serves(tmp_path: Path) -> None:
    """uvicorn said so only after kuzet had printed "kuzet dashboard on http://..." as if it were serving."""
    data = tmp_path / "d"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, out = _kuzet(data, "serve", "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in out and "--port" in out, out
    assert "dashboard on" not in out and not (data / "kuzet.db").exists()  # nothing opened, nothing created
    code, out = _kuzet(data, "serve", "--host", "no-such-host.invalid", "--port", str(port))
    assert code == 2 and "cannot listen on no-such-host.invalid: no such address" in _said(out), out

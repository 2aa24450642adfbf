"""The command line as a user runs it (the same commands later checks call)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuzet.cli.main import app
from tests.support.pdftext import pdf_text

pytestmark = pytest.mark.store

runner = CliRunner()
EXAMPLES = "face_recognition_examples"


PASSWORD = "a long enough password"


def _kuzet(data: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data), *args], input=stdin)
    return result.exit_code, result.output


def _signed_in_operator(data: Path, *, initialised: bool = False) -> None:
    if not initialised:
        assert _kuzet(data, "init", "--admin", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    assert _kuzet(data, "login", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    code, out = _kuzet(data, "users", "add", "olga", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, out
    code, out = _kuzet(data, "users", "add", "aigul", "--role", "approver", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, out
    code, out = _kuzet(data, "login", "olga", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0 and "signed in as olga (operator)" in out


def _as(data: Path, user: str, *args: str) -> tuple[int, str]:
    """Run a command as another user, then sign the operator back in."""
    assert _kuzet(data, "login", user, "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    try:
        return _kuzet(data, *args)
    finally:
        assert _kuzet(data, "login", "olga", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0


@pytest.mark.slow
def test_enroll_analyze_events_json(tmp_path: Path, faces_dir: Path, video_dir: Path) -> None:
    data = tmp_path / "d"
    _signed_in_operator(data)
    lin = str(faces_dir / EXAMPLES / "lin-manuel-miranda.png")
    code, out = _kuzet(data, "enroll", "Lin-Manuel Miranda", lin, "--consent", "signed form 17", "--scope", "stage")
    assert code == 0, out
    assert "1 photo(s)" in out and "needs approval" in out
    person = out.strip().splitlines()[-1]  # the id, on the last line
    assert person.isdigit()
    code, out = _kuzet(data, "people", "approve", person)
    assert code == 2 and "may not approve" in out  # the operator who enrolled cannot approve too
    code, out = _as(data, "aigul", "people", "approve", person, "--reason", "form 17 checked")
    assert code == 0, out
    out_json = tmp_path / "events.json"
    code, out = _kuzet(
        data,
        "analyze",
        str(video_dir / "short_hamilton_clip.mp4"),
        "--camera",
        "stage",
        "--fps",
        "10",
        "--json",
        str(out_json),
    )
    assert code == 0, out
    assert "summary" in out and "Lin-Manuel Miranda" in out
    events = json.loads(out_json.read_text())
    assert events and {"camera", "identity", "score", "start", "end", "track_id", "snapshot"} <= set(events[0])
    assert {e["identity"] for e in events} == {"Lin-Manuel Miranda"}
    assert all(e["camera"] == "stage" and Path(e["snapshot"]).is_file() for e in events)
    code, out = _kuzet(data, "events", "--json")
    assert code == 0
    listed = json.loads(out)
    assert sorted(e["id"] for e in listed) == sorted(e["id"] for e in events)
    code, out = _kuzet(data, "people", "--json")
    assert code == 0
    (listed_person,) = json.loads(out)
    assert listed_person["status"] == "approved" and listed_person["scope"] == ["stage"]
    # On a camera outside the enrolment's scope, the same person is an unknown face.
    code, out = _kuzet(data, "analyze", str(video_dir / "short_hamilton_clip.mp4"), "--camera", "lobby", "--fps", "5")
    assert code == 0 and "Lin-Manuel Miranda" not in out and "matched nobody" in out


def test_bad_input_exits_non_zero_with_advice(tmp_path: Path) -> None:
    _signed_in_operator(tmp_path / "d")
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    code, out = _kuzet(tmp_path / "d", "analyze", str(junk))
    assert code == 2
    assert "error:" in out and "junk.mp4" in out and "what to do:" in out
    code, out = _kuzet(tmp_path / "d", "analyze", str(tmp_path / "empty-dir-missing"))
    assert code == 2 and "does not exist" in out
    code, out = _kuzet(tmp_path / "d", "enroll", "X", str(junk), "--consent", "form 1")
    assert code == 2 and "cannot enrol from" in out


def test_config_check_explains_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("recognition:\n  threshold: 0.93\n")
    code, out = _kuzet(tmp_path / "d", "config", "check", str(good))
    assert code == 0 and "OK" in out and "0.93" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("recognition:\n  threshold: high\ntracker:\n  best_shots: 0\n")
    code, out = _kuzet(tmp_path / "d", "config", "check", str(bad))
    assert code == 2
    assert "recognition.threshold" in out and "tracker.best_shots" in out
    fused = tmp_path / "fused.yaml"
    fused.write_text("face_fusion:\n  embedder: {type: sface}\n  threshold: 0.6\n")
    code, out = _kuzet(tmp_path / "d", "config", "check", str(fused))
    assert code == 0 and "fusion(dlib-resnet+sface)" in out and "threshold 0.6" in out, out
    constants = tmp_path / "other-fusion.json"
    constants.write_text(
        '{"rule": "anchored-mean", "models": [{"model": "dlib-resnet", "centre": 0.85, "scale": 0.1, "weight": 0.5},'
        ' {"model": "arcface", "centre": 0.1, "scale": 0.6, "weight": 0.5}]}'
    )
    fused.write_text(f"face_fusion:\n  embedder: {{type: sface}}\n  constants: {constants}\n")
    code, out = _kuzet(tmp_path / "d", "config", "check", str(fused))
    assert code == 2 and "fuse dlib-resnet and arcface" in out, out
    fused.write_text("face_fusion:\n  embedder: {type: sface}\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "categories:\n  border-alert:\n    purpose: Find people under an entry ban.\n    max_days: 30\n"
        "    threshold: 0.93\nlegal_basis_types: [entry-ban]\n"
    )
    assert _kuzet(tmp_path / "d", "config", "policy", str(policy))[0] == 0  # one model: a cosine threshold
    code, out = _kuzet(tmp_path / "d", "--config", str(fused), "config", "policy", str(policy))
    assert code == 2 and "border-alert give a cosine threshold" in out, out


def test_config_file_in_data_dir_is_used(tmp_path: Path, faces_dir: Path) -> None:
    data = tmp_path / "d"
    _signed_in_operator(data)
    (data / "config.yaml").write_text("face_detector:\n  type: nonsense\n")
    code, out = _kuzet(data, "enroll", "A", str(faces_dir / EXAMPLES / "lin-manuel-miranda.png"), "--consent", "f1")
    assert code == 2 and "config.yaml" in out


def test_commands_need_a_signed_in_user(tmp_path: Path, faces_dir: Path) -> None:
    data = tmp_path / "d"
    photo = str(faces_dir / EXAMPLES / "lin-manuel-miranda.png")
    code, out = _kuzet(data, "enroll", "A", photo, "--consent", "f1")
    assert code == 2 and "there is no kuzet data" in out and "kuzet init" in out
    assert _kuzet(data, "init", "--admin", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    code, out = _kuzet(data, "enroll", "A", photo, "--consent", "f1")
    assert code == 2 and "not signed in" in out and "kuzet login" in out
    _signed_in_operator(data, initialised=True)
    code, out = _kuzet(data, "whoami")
    assert code == 0 and "olga (operator)" in out
    token_file = data / "session.token"
    assert token_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    code, out = _kuzet(data, "logout")
    assert code == 0 and not token_file.exists()
    code, out = _kuzet(data, "whoami")
    assert code == 2 and "not signed in" in out
    code, out = _kuzet(data, "login", "olga", "--password-stdin", stdin="wrong password!!\n")
    assert code == 2 and "wrong user name or password" in out
    code, out = _kuzet(data, "init", "--admin", "again", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 2 and "already initialised" in out


def test_console_script_demo_runs_from_installed_packages(tmp_path: Path) -> None:
    exe = shutil.which("kuzet") or str(Path(sys.executable).parent / "kuzet")
    shared = os.environ | {"KUZET_DATABASE_URL": "postgresql://kuzet@127.0.0.1:1/kuzet"}
    refused = subprocess.run([exe, "--data-dir", str(tmp_path / "x"), "demo", "--no-serve"], env=shared,
                             capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert refused.returncode == 2 and "never on a shared database" in refused.stderr
    assert not (tmp_path / "x").exists()
    own = {k: v for k, v in os.environ.items() if k != "KUZET_DATABASE_URL"}  # the demo is SQLite, on any suite
    proc = subprocess.run(
        [exe, "--data-dir", str(tmp_path / "home"), "demo", "--no-serve"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env=own,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Eileen Collins" in out
    assert "match events (1)" in out  # the consenting astronaut, once
    assert "is refused" in out and "activist" in out  # the labelled request
    assert "reviewer2 confirms -> confirmed" in out  # Grace Hopper's alert, after two reviewers
    assert "derived from the false-match rate 0.001 that missing-person declares" in out  # the alert's declared rate
    assert "1 face track(s) matched nobody" in out  # the cameraman: counted, not stored
    assert "verifies the ledger: OK" in out
    home = tmp_path / "home"
    assert (home / "kuzet.db").is_file() and f"kuzet --data-dir {home} login" in out  # the data dir itself
    again = subprocess.run(
        [exe, "--data-dir", str(home), "demo", "--no-serve"], capture_output=True, text=True, timeout=300,
        check=False, env=own,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr  # an earlier demo is replaced


def test_the_demo_never_touches_a_folder_with_other_data(tmp_path: Path) -> None:
    data = tmp_path / "real"
    _signed_in_operator(data)
    before = sorted(p.name for p in data.iterdir())
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KUZET_DATABASE_URL", raising=False)  # the demo would refuse a shared database before the folder
        code, out = _kuzet(data, "demo", "--no-serve")
    assert code == 2 and "not kuzet's demo" in out and "--data-dir" in out
    assert sorted(p.name for p in data.iterdir()) == before
    assert _kuzet(data, "whoami")[1].startswith("olga")


def test_markup_in_user_input_is_printed_not_interpreted(tmp_path: Path) -> None:
    """Finding 9: a user name like `[/x]` crashed the error printer (rich markup)."""
    data = tmp_path / "d"
    _signed_in_operator(data)
    assert _kuzet(data, "login", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    code, out = _kuzet(data, "users", "add", "[/x]", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 2 and "invalid user name '[/x]'" in out
    code, out = _kuzet(data, "analyze", str(tmp_path / "[bold]missing[/].mp4"))
    assert code == 2 and "[bold]missing[/].mp4" in out


def test_config_check_refuses_what_kuzet_run_would(tmp_path: Path) -> None:
    """Item 9 of the operations-room issue: `config check` passed a live config that `kuzet run` then refused."""
    cams = tmp_path / "cams.yaml"
    cams.write_text("cameras:\n  - name: gate\n    source: rtsp://10.0.0.5/gate\n")
    code, out = _kuzet(tmp_path / "d", "config", "check", str(cams))
    assert code == 2 and "gate state no purpose" in out
    cams.write_text("cameras:\n  - name: gate\n    source: rtsp://10.0.0.5/gate\n    purpose: watch the activists\n")
    code, out = _kuzet(tmp_path / "d", "config", "check", str(cams))
    assert code == 2 and "camera gate" in out and "prohibited" in out
    cams.write_text("cameras:\n  - name: gate\n    source: rtsp://10.0.0.5/gate\n    purpose: staff access control\n")
    code, out = _kuzet(tmp_path / "d", "config", "check", str(cams))
    assert code == 0 and "OK" in out
    code, out = _kuzet(tmp_path / "d", "config", "check", str(Path(__file__).parents[2] / "examples" / "car-park.yaml"))
    assert code == 0, out


def test_signing_in_where_there_is_no_data_says_so_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    code, out = _kuzet(empty, "login", "olga", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 2 and "there is no kuzet data in" in out and "kuzet init" in out
    assert "wrong user name or password" not in out
    assert not empty.exists()  # no empty database was made on the way
    code, out = _kuzet(empty, "events")
    assert code == 2 and "there is no kuzet data" in out and not empty.exists()


def test_the_transparency_report_in_kazakh(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert _kuzet(data, "init", "--admin", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    assert _kuzet(data, "login", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    period = ("report", "transparency", "--from", "2026-01-01", "--to", "2026-01-31")
    code, out = _kuzet(data, *period, "-o", str(tmp_path / "report.pdf"), "--lang", "kk")
    assert code == 0, out
    text = pdf_text((tmp_path / "report.pdf").read_bytes())
    assert "Ашықтық есебі" in text and "Аудит журналы" in text and "Audit ledger" not in text
    code, out = _kuzet(data, *period, "-o", str(tmp_path / "report.html"))  # English unless asked
    assert code == 0 and "<h1>Transparency report</h1>" in (tmp_path / "report.html").read_text(encoding="utf-8")
    code, out = _kuzet(data, *period, "-o", str(tmp_path / "other.pdf"), "--lang", "de")
    assert code == 2 and "'de' is not one of 'kk', 'ru'" in out and not (tmp_path / "other.pdf").exists()


def test_people_reembed_is_for_administrators_and_says_what_it_added(tmp_path: Path) -> None:
    data = tmp_path / "d"
    _signed_in_operator(data)  # olga, an operator, is signed in
    code, out = _kuzet(data, "people", "reembed")
    assert code != 0 and "olga may not describe stored photos" in out and "role admin" in out, out
    assert _kuzet(data, "login", "root", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    code, out = _kuzet(data, "people", "reembed", "--json")
    assert code == 0, out
    assert json.loads(out) == {"people": 0, "entries": 0, "templates": 0, "failed": []}

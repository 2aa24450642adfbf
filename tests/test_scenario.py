"""The whole watchlist scenario from the command line, as an operator and an auditor would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import utc_today
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store

PASSWORD = "scenario password 1"


def _kuzet(data: Path, *args: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kuzet") or str(Path(sys.executable).parent / "kuzet")
    env = dict(os.environ)
    env.pop("KUZET_TOKEN", None)
    if user is not None:
        login = subprocess.run(
            [exe, "--data-dir", str(data), "login", user, "--password-stdin"],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert login.returncode == 0, login.stderr
    proc = subprocess.run(
        [exe, "--data-dir", str(data), *args],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_request_approve_analyse_review_verify_and_detect_tampering(
    tmp_path: Path, faces_dir: Path, video_dir: Path
) -> None:
    data = tmp_path / "k"
    _kuzet(data, "init", "--admin", "root", "--password-stdin")
    for name, role in [
        ("rustam", "requester"),
        ("aigul", "approver"),
        ("olga", "operator"),
        ("marat", "reviewer"),
        ("saule", "reviewer"),
        ("timur", "auditor"),
    ]:
        _kuzet(data, "users", "add", name, "--role", role, "--password-stdin", user="root")

    expires = (utc_today() + timedelta(days=90)).isoformat()
    out = _kuzet(
        data,
        "watchlist",
        "request",
        "--list",
        "wanted",
        "--name",
        "Lin-Manuel Miranda",
        "--photo",
        str(faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png"),
        "--category",
        "wanted-person",
        "--legal-basis",
        "court-order",
        "--reference",
        "2-345/2026",
        "--authority",
        "Almaty city court",
        "--expires",
        expires,
        "--note",
        "robbery suspect",
        user="rustam",
    ).stdout
    entry_id = out.strip().splitlines()[-1]
    assert entry_id.isdigit()  # the last line is the new entry's id alone, for scripts

    refused = _kuzet(
        data,
        "watchlist",
        "request",
        "--list",
        "wanted",
        "--name",
        "Someone",
        "--photo",
        str(faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png"),
        "--category",
        "wanted-person",
        "--legal-basis",
        "court-order",
        "--reference",
        "1",
        "--authority",
        "court",
        "--expires",
        expires,
        "--note",
        "известный блогер",
        user="rustam",
        check=False,
    )
    assert refused.returncode == 2 and "prohibited label" in refused.stderr

    same = _kuzet(data, "watchlist", "approve", entry_id, user="rustam", check=False)
    assert same.returncode == 2  # a requester holds no approver role, and could never approve their own entry
    _kuzet(data, "watchlist", "approve", entry_id, "--reason", "order checked", user="aigul")
    shown = json.loads(_kuzet(data, "watchlist", "show", "--json", user="aigul").stdout)
    assert shown[0]["status"] == "approved" and shown[0]["approver"] == "aigul"

    out = _kuzet(
        data, "analyze", str(video_dir / "short_hamilton_clip.mp4"), "--camera", "stage", "--fps", "10", user="olga"
    ).stdout
    assert "wait for review" in out

    alerts = json.loads(_kuzet(data, "review", "list", "--json", user="marat").stdout)
    assert alerts and alerts[0]["status"] == "pending" and alerts[0]["required_reviews"] == 2
    alert_id = str(alerts[0]["alert_id"])
    out = _kuzet(data, "review", "confirm", alert_id, "--reason", "same face", user="marat").stdout
    assert "now pending" in out
    twice = _kuzet(data, "review", "confirm", alert_id, "--reason", "again", user="marat", check=False)
    assert twice.returncode == 2 and "already reviewed" in twice.stderr
    out = _kuzet(data, "review", "confirm", alert_id, "--reason", "agree", user="saule").stdout
    assert "now confirmed" in out

    verify = _kuzet(data, "audit", "verify", user="timur")
    assert "ledger OK" in verify.stdout
    log = json.loads(_kuzet(data, "audit", "log", "--json", user="timur").stdout)
    actions = [e["action"] for e in log]
    for expected in [
        "user.init",
        "user.add",
        "auth.login",
        "watchlist.request",
        "watchlist.refused",
        "watchlist.approve",
        "analysis.run",
        "alert.created",
        "review.confirm",
        "review.refused",
        "alert.confirmed",
    ]:
        assert expected in actions, expected
    proof = json.loads(_kuzet(data, "audit", "prove", "3", "--json", user="timur").stdout)
    assert proof["valid"] is True and proof["audit_path"]

    # Tamper with one ledger row directly in the SQLite file: verify must fail and name the entry.
    con = raw_db(data)
    con.execute("UPDATE audit_entries SET actor = 'nobody' WHERE seq = 7")
    con.commit()
    con.close()
    broken = _kuzet(data, "audit", "verify", user="timur", check=False)
    assert broken.returncode == 1
    assert "entry 7" in broken.stderr

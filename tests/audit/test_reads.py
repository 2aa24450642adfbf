"""Reads never take the write lock (finding 8): verifying a long ledger blocks neither sign-in nor other processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kuzet.app import Kuzet
from kuzet.audit import merkle
from kuzet.audit import verify as verify_module
from kuzet.audit.checkpoint_log import CheckpointLog
from kuzet.audit.ledger import Checkpoint, checkpoint_message, entry_bytes
from tests.conftest import PASSWORD
from tests.support.rawdb import raw_db

pytestmark = pytest.mark.store

ENTRIES = 150_000


def _bytes(f: dict[str, object]) -> bytes:
    return entry_bytes(
        seq=int(str(f["seq"])),
        ts=str(f["ts"]),
        actor=str(f["actor"]),
        action=str(f["action"]),
        object=str(f["object"]),
        justification=str(f["justification"]),
        details=str(f["details"]),
        source=str(f["source"]),
        prev_hash=str(f["prev_hash"]),
    )


def _grow(svc: Kuzet, n: int) -> None:
    """Append `n` real, chained entries and one signed checkpoint over them, as years of use would leave."""
    con = raw_db(svc.data_dir)
    seq, prev = con.execute("SELECT seq, entry_hash FROM audit_entries ORDER BY seq DESC LIMIT 1").fetchone()
    leaves = [bytes.fromhex(h) for (h,) in con.execute("SELECT entry_hash FROM audit_entries ORDER BY seq")]
    rows = []
    for i in range(n):
        seq += 1
        fields = {
            "seq": seq,
            "ts": "2026-01-01T00:00:00.000000+00:00",
            "actor": "olga",
            "action": "events.view",
            "object": "",
            "justification": "",
            "details": json.dumps({"count": i % 50}),
            "source": "cli@host",
            "prev_hash": prev,
        }
        prev = merkle.leaf_hash(_bytes(fields)).hex()
        leaves.append(bytes.fromhex(prev))
        rows.append((*fields.values(), prev))
    con.executemany("INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    root, ts, signer = merkle.root(leaves).hex(), "2026-01-01T00:00:01+00:00", svc.signer
    signature = signer.sign(checkpoint_message(seq, root, ts, signer.public_hex)).hex()
    (cp_id,) = con.execute(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, ts, key_id, signature, public_key) VALUES (?,?,?,?,?,?)"
        " RETURNING id",
        (seq, root, ts, signer.key_id, signature, signer.public_hex),
    ).fetchone()
    cp = Checkpoint(int(cp_id), seq, root, ts, signer.key_id, signature, signer.public_hex)
    CheckpointLog(svc.checkpoint_log.path).prepare(cp)
    con.commit()
    con.close()
    CheckpointLog(svc.checkpoint_log.path).committed(cp)


def test_verifying_a_long_ledger_blocks_no_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The verification stays open (its read transaction too) until the writes below are done, however quick the
    # machine: a race against its length once depended on the subprocess starting within about a second.
    release = threading.Event()
    check_checkpoints = verify_module._check_checkpoints

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(120)
        return check_checkpoints(*args, **kwargs)

    monkeypatch.setattr(verify_module, "_check_checkpoints", held)
    svc = Kuzet(tmp_path / "data")
    admin = svc.init_admin("admin", PASSWORD)
    svc.add_user(admin, "auditor", PASSWORD, ["auditor"])
    _grow(svc, ENTRIES)
    auditor, _ = svc.login("auditor", PASSWORD)

    verify_started, verify_done = threading.Event(), threading.Event()
    result: list[object] = []

    def verify() -> None:
        verify_started.set()
        result.append(svc.audit_verify(auditor))
        verify_done.set()

    thread = threading.Thread(target=verify)
    thread.start()
    verify_started.wait()
    time.sleep(0.3)  # well inside the verification
    # Sign-in (a write: a session and its ledger entry) from this process ...
    t0 = time.perf_counter()
    svc.login("admin", PASSWORD)
    signed_in_after = time.perf_counter() - t0
    # ... and a write from another process, which used to get "database is locked".
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from kuzet.app import Kuzet
        svc = Kuzet(Path({str(svc.data_dir)!r}))
        admin, _ = svc.login("admin", {PASSWORD!r})
        svc.add_user(admin, "olga", {PASSWORD!r}, ["operator"])
        svc.close()
        print("written")
        """
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    still_verifying = not verify_done.is_set()
    release.set()
    thread.join(300)
    svc.close()
    assert other.returncode == 0 and "written" in other.stdout, other.stderr
    report = result[0]
    assert getattr(report, "ok", False) and getattr(report, "entries", 0) > ENTRIES
    assert still_verifying, "the verification ended before the writes were done"
    assert signed_in_after < 2.0


def test_verifying_through_the_api_blocks_no_sign_in(tmp_path: Path) -> None:
    """Finding 8 as found: an audit verify through the API blocked sign-in for as long as it ran."""
    import httpx

    from tests.support.serve import KuzetServe

    svc = Kuzet(tmp_path / "data")
    admin = svc.init_admin("admin", PASSWORD)
    svc.add_user(admin, "auditor", PASSWORD, ["auditor"])
    _grow(svc, ENTRIES)
    svc.close()
    with KuzetServe(tmp_path / "data", tmp_path / "serve.log") as server:
        token = httpx.post(f"{server.url}/api/auth/login", json={"name": "auditor", "password": PASSWORD}).json()
        result: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: result.append(
                httpx.post(
                    f"{server.url}/api/audit/verify",
                    headers={"Authorization": f"Bearer {token['token']}"},
                    timeout=300,
                )
            )
        )
        thread.start()
        time.sleep(1.0)  # the verification is under way
        t0 = time.perf_counter()
        login = httpx.post(f"{server.url}/api/auth/login", json={"name": "admin", "password": PASSWORD}, timeout=60)
        took = time.perf_counter() - t0
        still_verifying = thread.is_alive()
        thread.join(300)
    assert login.status_code == 200 and took < 2.0, took
    assert still_verifying, "the verification was too quick to show anything: grow the ledger"
    assert result[0].status_code == 200 and result[0].json()["ok"] is True

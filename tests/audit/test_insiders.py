"""The ledger against the people who run it: rewrite, cut back, swap keys; witnesses and trusted checkpoints catch it.

Each test does to a real data directory what an insider with the server's files (and the signing key) could do,
then checks which control catches it. Local checks alone cannot catch someone who holds the key and rewrites every
local copy: the tests show that too, and that a witness outside the data directory does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kuzet.app import Kuzet
from kuzet.audit.ledger import GENESIS, _row_hash
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.verify import TrustedCheckpoint, load_trusted
from kuzet.audit.witness import LocalLedgerSource, watch
from kuzet.cli.main import app
from kuzet.config.models import KuzetConfig
from kuzet.core.errors import ConfigError
from kuzet.core.types import User
from kuzet.store.db import Database
from kuzet.store.models import AuditEntryRow
from tests.conftest import PASSWORD
from tests.support.rawdb import raw_db, store_url

pytestmark = pytest.mark.store

runner = CliRunner()


def _open(data: Path, witness: Path) -> Kuzet:
    config = KuzetConfig.model_validate({"audit": {"witnesses": [{"type": "file", "path": str(witness)}]}})
    return Kuzet(data, config)


def _busy(svc: Kuzet, n: int = 6) -> User:
    """Some history: users added and signing in; returns the auditor."""
    admin, _ = svc.login("admin", PASSWORD)
    for i in range(n):
        svc.add_user(admin, f"user{i}", PASSWORD, ["operator"])
    return svc.login("auditor", PASSWORD)[0]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """A data directory with history, and a file witness outside it holding every checkpoint."""
    data, witness = tmp_path / "data", tmp_path / "elsewhere" / "witness.jsonl"
    svc = _open(data, witness)
    admin = svc.init_admin("admin", PASSWORD)
    svc.add_user(admin, "auditor", PASSWORD, ["auditor"])
    _busy(svc)
    svc.close()
    return data, witness


def _sql(data: Path, *statements: str) -> None:
    con = raw_db(data)
    for st in statements:
        con.execute(st)
    con.commit()
    con.close()


def _drop_log_lines(data: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    log = data / "audit" / "checkpoints.jsonl"
    lines = [line for line in log.read_text().splitlines() if keep(json.loads(line))]
    log.write_text("".join(f"{line}\n" for line in lines))


def _checkpoint_ids(data: Path, where: str) -> set[int]:
    con = raw_db(data)
    ids = {r[0] for r in con.execute(f"SELECT id FROM audit_checkpoints WHERE {where}")}
    con.close()
    return ids


def _rewrite_from(data: Path, seq: int) -> None:
    """Change entry `seq` and recompute the hash chain after it, as a forger with database access would."""
    db = Database(store_url(data))
    with db.session() as s:
        rows = list(s.query(AuditEntryRow).order_by(AuditEntryRow.seq))
        rows[seq - 1].actor = "someone-else"
        prev = GENESIS
        for r in rows:
            r.prev_hash = prev
            r.entry_hash = _row_hash(r)
            prev = r.entry_hash
    db.dispose()


def _cut_back(data: Path, below: int) -> int:
    """Delete the newest entries (down to a checkpoint boundary under `below`) with their checkpoints, and make the
    outside copy match; returns the ledger's new size."""
    con = raw_db(data)
    cut = con.execute("SELECT max(tree_size) FROM audit_checkpoints WHERE tree_size < ?", (below,)).fetchone()[0]
    con.execute("DELETE FROM audit_entries WHERE seq > ?", (cut,))
    con.execute("DELETE FROM audit_checkpoints WHERE tree_size > ?", (cut,))
    con.commit()
    con.close()
    _drop_log_lines(data, lambda r: _in_db(data, r))
    return int(cut)


def _verify(data: Path, witness: Path, *, trusted: list[TrustedCheckpoint] | None = None) -> tuple[bool, str]:
    svc = _open(data, witness)
    try:
        report = svc.audit_verify(None, trusted=trusted)
    finally:
        svc.close()
    return report.ok, report.problem


def _touch(data: Path, witness: Path) -> None:
    """Any later action: the next transaction signs a checkpoint over whatever the ledger now holds."""
    svc = _open(data, witness)
    svc.login("auditor", PASSWORD)
    svc.close()


def test_a_witness_holds_every_committed_checkpoint(site: tuple[Path, Path]) -> None:
    data, witness = site
    held = load_trusted(witness)
    assert held and all(cp.signature_ok() for cp in held)
    assert [cp.tree_size for cp in held] == sorted(cp.tree_size for cp in held)
    ok, problem = _verify(data, witness, trusted=held)
    assert ok, problem


def test_a_witness_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="inside the data directory"):
        _open(tmp_path / "data", tmp_path / "data" / "audit" / "witness.jsonl")


def test_rewritten_history_resigned_with_the_key_is_caught_by_witnesses(site: tuple[Path, Path]) -> None:
    """Finding 1: change entry K, re-chain, delete the checkpoints that cover K and their lines, sign afresh."""
    data, witness = site
    before = load_trusted(witness)
    k = 5
    state = data.parent / "monitor"
    assert watch(LocalLedgerSource(data), state).ok  # an auditor's monitor saw the honest ledger
    _rewrite_from(data, k)
    gone = _checkpoint_ids(data, f"tree_size >= {k}")
    _sql(data, f"DELETE FROM audit_checkpoints WHERE tree_size >= {k}")
    _drop_log_lines(data, lambda r: r["id"] not in gone)
    _touch(data, witness.parent / "attacker-witness.jsonl")  # the forger does not feed the real witness

    # With the key and every local copy rewritten, the local checks cannot tell: that is what witnesses are for.
    ok, _ = _verify(data, witness.parent / "unused.jsonl")
    assert ok
    ok, problem = _verify(data, witness.parent / "unused.jsonl", trusted=before)
    assert not ok and "contradicted" in problem and "rewritten" in problem
    result = watch(LocalLedgerSource(data), state)
    assert not result.ok and "FORK" in result.message


def test_cli_verify_names_the_contradicted_checkpoint(site: tuple[Path, Path]) -> None:
    data, _ = site
    login = runner.invoke(app, ["--data-dir", str(data), "login", "auditor", "--password-stdin"], input=PASSWORD + "\n")
    assert login.exit_code == 0
    out = runner.invoke(app, ["--data-dir", str(data), "audit", "checkpoint", "--json"])
    assert out.exit_code == 0
    held = json.loads(out.output.strip().splitlines()[-1])
    assert set(held) == {"tree_size", "root_hash", "timestamp", "key_id", "public_key", "signature"}
    trusted = data.parent / "held.json"
    trusted.write_text(json.dumps(held))
    good = runner.invoke(app, ["--data-dir", str(data), "audit", "verify", "--trusted", str(trusted)])
    assert good.exit_code == 0 and "extends all 1 trusted" in good.output
    size = held["tree_size"]
    _cut_back(data, size - 1)
    bad = runner.invoke(app, ["--data-dir", str(data), "audit", "verify", "--trusted", str(trusted)])
    assert bad.exit_code == 1
    assert f"({size} entries, root {held['root_hash'][:16]})" in bad.output and "cut back" in bad.output


def test_cutting_back_the_newest_entries(site: tuple[Path, Path]) -> None:
    """Finding 1: delete the newest entries with their checkpoints (and the outside copy)."""
    data, witness = site
    before = load_trusted(witness)
    state = data.parent / "monitor"
    assert watch(LocalLedgerSource(data), state).ok
    size = before[-1].tree_size
    cut = size - 3
    _sql(data, f"DELETE FROM audit_entries WHERE seq > {cut}", f"DELETE FROM audit_checkpoints WHERE tree_size > {cut}")
    # The outside copy still lists the deleted checkpoints.
    ok, problem = _verify(data, witness)
    assert not ok and "missing or different in the database" in problem
    # ... and without it, the copy is missing.
    log = data / "audit" / "checkpoints.jsonl"
    log.unlink()
    ok, problem = _verify(data, witness)
    assert not ok and "checkpoints.jsonl" in problem and "missing" in problem


def test_a_cut_back_that_local_checks_miss_is_caught_by_witnesses(site: tuple[Path, Path]) -> None:
    """Cut back to a checkpoint boundary and rewrite the outside copy to match: only a witness can tell."""
    data, witness = site
    before = load_trusted(witness)
    state = data.parent / "monitor"
    assert watch(LocalLedgerSource(data), state).ok
    _cut_back(data, before[-1].tree_size - 2)
    ok, problem = _verify(data, witness.parent / "unused.jsonl")
    assert ok, problem  # the documented limit of checks made with only what the server holds
    ok, problem = _verify(data, witness.parent / "unused.jsonl", trusted=before)
    assert not ok and "cut back" in problem
    result = watch(LocalLedgerSource(data), state)
    assert not result.ok and "ROLLBACK" in result.message


def _in_db(data: Path, record: dict[str, object]) -> bool:
    return int(str(record["id"])) in _checkpoint_ids(data, f"root_hash = '{record['root_hash']}'")


def test_deleting_only_checkpoints_leaves_entries_uncovered(site: tuple[Path, Path]) -> None:
    data, witness = site
    _sql(data, "DELETE FROM audit_checkpoints WHERE id = (SELECT max(id) FROM audit_checkpoints)")
    ok, problem = _verify(data, witness)
    assert not ok and "not covered by a signed checkpoint" in problem


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ('["not", "an", "object"]\n', "not a checkpoint record"),
        ("42\n", "not a checkpoint record"),
        ('{"id": "x"}\n', "not a checkpoint record"),
        ("{broken json\n", "is corrupt"),
    ],
)
def test_a_damaged_outside_copy_is_reported_not_crashed_on(site: tuple[Path, Path], damage: str, expected: str) -> None:
    data, witness = site
    log = data / "audit" / "checkpoints.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:2]) + damage + "".join(lines[2:]))
    ok, problem = _verify(data, witness)
    assert not ok and expected in problem


def test_an_outside_copy_behind_the_database_is_reported(site: tuple[Path, Path]) -> None:
    data, witness = site
    newest = max(_checkpoint_ids(data, "1 = 1"))
    _drop_log_lines(data, lambda r: r["id"] != newest)
    ok, problem = _verify(data, witness)
    assert not ok and f"checkpoint {newest} of the database is not in checkpoints.jsonl" in problem


def test_a_crash_between_writing_ahead_and_committing_is_not_tampering(site: tuple[Path, Path]) -> None:
    """A checkpoint written ahead whose transaction never committed (the process died) is not a missing one."""
    data, witness = site
    from kuzet.audit.checkpoint_log import CheckpointLog
    from kuzet.audit.ledger import Checkpoint

    newest = max(_checkpoint_ids(data, "1 = 1"))
    CheckpointLog(data / "audit" / "checkpoints.jsonl").prepare(
        Checkpoint(newest + 1, 10**6, "ab" * 32, "2026-01-01T00:00:00+00:00", "k", "s", "00" * 32)
    )
    ok, problem = _verify(data, witness)
    assert ok, problem
    _touch(data, witness)  # the next transaction reuses the id
    ok, problem = _verify(data, witness)
    assert ok, problem


def test_a_crash_between_committing_and_marking_committed_is_not_tampering(site: tuple[Path, Path]) -> None:
    """Checkpoints left `prepared` (the process died before their `committed` markers) verify as committed.

    Cutting the copy back is still caught.
    """
    data, witness = site
    _drop_log_lines(data, lambda r: r["state"] != "committed")
    ok, problem = _verify(data, witness)
    assert ok, problem
    newest = max(_checkpoint_ids(data, "1 = 1"))
    _drop_log_lines(data, lambda r: r["id"] != newest)
    ok, problem = _verify(data, witness)
    assert not ok and f"checkpoint {newest} of the database is not in checkpoints.jsonl" in problem


def test_a_replaced_signing_key_is_reported(site: tuple[Path, Path]) -> None:
    """The verifier no longer trusts whatever key is in keys/: a new key needs a hand-over signed by the old one."""
    data, witness = site
    keys = data / "keys"
    for name in ("ledger-ed25519.pem", "ledger-ed25519.pub.pem"):
        (keys / name).unlink()
    LedgerSigner.generate().save(keys)
    _touch(data, witness)  # signs the next checkpoint with the new key
    ok, problem = _verify(data, witness)
    assert not ok and "no hand-over signed by the old key" in problem


def test_a_rotated_key_keeps_every_check_passing(site: tuple[Path, Path]) -> None:
    data, witness = site
    before = load_trusted(witness)
    state = data.parent / "monitor"
    assert watch(LocalLedgerSource(data), state).ok
    svc = _open(data, witness)
    admin, _ = svc.login("admin", PASSWORD)
    old_key = svc.signer.key_id
    new_key = svc.audit_rotate_key(admin)
    svc.close()
    assert new_key != old_key
    ok, problem = _verify(data, witness, trusted=before + load_trusted(witness))
    assert ok, problem
    result = watch(LocalLedgerSource(data), state)
    assert result.ok and result.checkpoint is not None and result.checkpoint.key_id == new_key
    # A forged hand-over (not signed by the old key) breaks the ledger.
    con = raw_db(data)
    seq, details = con.execute("SELECT seq, details FROM audit_entries WHERE action = 'audit.key_rotated'").fetchone()
    con.close()
    forged = json.loads(details)
    forged["statement_signature"] = "00" * 64
    con = raw_db(data)
    con.execute(
        "UPDATE audit_entries SET details = ? WHERE seq = ?",
        (json.dumps(forged, sort_keys=True, separators=(",", ":")), seq),
    )
    con.commit()
    con.close()
    ok, problem = _verify(data, witness)
    assert not ok and f"entry {seq}" in problem

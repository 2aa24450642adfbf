"""The ledger for auditors: `kuzet audit` verify, witness, log, checkpoints, proofs, key rotation."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from kuzet.audit.verify import load_trusted
from kuzet.cli.common import MAX_ID, TOKEN_ENV, console, err_console, json_out, session
from kuzet.core.errors import AuthError, InputError

audit_app = typer.Typer(help="Verify and read the tamper-evident audit ledger.", no_args_is_help=True)


def alarm(label: str, message: str) -> typer.Exit:
    """Print an alarm (a tampered ledger, a failed proof) on stderr; the exit (code 1) to raise."""
    err_console.print(Text.assemble((f"{label}: ", "bold red"), message))
    return typer.Exit(code=1)


@audit_app.command("verify")
def audit_verify(
    trusted: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted",
            help="A file of signed checkpoints held outside the data directory (`audit checkpoint --json`, a "
            "witness file); the ledger must extend each one (repeatable).",
        ),
    ] = None,
) -> None:
    """Check every entry and checkpoint; exits 1 naming the first bad entry or contradicted checkpoint."""
    held = [cp for f in trusted or [] for cp in load_trusted(f)]
    services, actor = session()
    report = services.audit.verify(actor, trusted=held)
    if not report.ok:
        where = f" (first bad entry: {report.first_bad})" if report.first_bad else ""
        raise alarm("LEDGER TAMPERED", f"{report.problem}{where}")
    extra = f"; extends all {report.trusted} trusted checkpoint(s)" if report.trusted else ""
    console.print(
        f"ledger OK: {report.entries} entries, {report.checkpoints} signed checkpoints verified{extra}", highlight=False
    )


@audit_app.command("witness")
def audit_witness(
    url: Annotated[str, typer.Option("--url", help="The kuzet API (https://HOST:PORT) or a data directory.")],
    state: Annotated[Path, typer.Option("--state", help="The monitor's own folder: the checkpoints it accepted.")],
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="File holding an auditor's API token (else KUZET_TOKEN).")
    ] = None,
) -> None:
    """An auditor's monitor: fetch the newest checkpoint, check it extends the last one accepted, keep it.

    Exits 1 on a rollback, a fork or a signing key changed without a signed hand-over; run it on a schedule.
    """
    from kuzet.audit.witness import HttpLedgerSource, LedgerSource, LocalLedgerSource, watch

    source: LedgerSource
    try:
        if url.startswith(("http://", "https://")):
            token = (
                token_file.read_text(encoding="utf-8").strip() if token_file else os.environ.get(TOKEN_ENV, "").strip()
            )
            if not token:
                raise AuthError("no API token", hint="give --token-file or set KUZET_TOKEN to an auditor's token")
            source = HttpLedgerSource(url, token)
        else:
            source = LocalLedgerSource(Path(url.removeprefix("file://")))
        result = watch(source, state)
    except OSError as exc:
        raise InputError(f"cannot use {state}: {exc.strerror}", hint="give a writable folder") from None
    if not result.ok:
        raise alarm("WITNESS ALARM", result.message)
    console.print(f"witness OK: {result.message}", highlight=False)


@audit_app.command("rotate-key")
def audit_rotate_key() -> None:
    """Hand checkpoint signing to a new key; the old key signs the hand-over into the ledger (admins)."""
    services, actor = session()
    key_id = services.audit.rotate_key(actor)
    console.print(f"checkpoints are now signed by key {key_id}; the hand-over is in the ledger", highlight=False)


@audit_app.command("log")
def audit_log(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    start: Annotated[int, typer.Option("--from", min=1, max=MAX_ID, help="First entry number.")] = 1,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_ID, help="At most this many entries.")] = 1000,
    action: Annotated[str | None, typer.Option("--action", help="Only this action, e.g. watchlist.refused.")] = None,
) -> None:
    """Read the ledger (audited)."""
    services, actor = session()
    rows = services.audit.log(actor, start=start, limit=limit, action=action)
    if json_flag:
        json_out([asdict(r) for r in rows])
        return
    table = Table("#", "time (UTC)", "actor", "action", "object", "justification")
    for r in rows:
        table.add_row(str(r.seq), r.ts[:19], r.actor, r.action, r.object, r.justification)
    console.print(table)


@audit_app.command("checkpoint")
def audit_checkpoint(
    json_flag: Annotated[
        bool, typer.Option("--json", help="Print the signed checkpoint as one JSON object (what witnesses hold).")
    ] = False,
) -> None:
    """Sign a checkpoint (tree size and Merkle root) of the ledger now."""
    services, actor = session()
    cp = services.audit.checkpoint(actor)
    if json_flag:
        sys.stdout.write(json.dumps(cp.signed_json(), sort_keys=True) + "\n")
        return
    console.print(
        f"checkpoint {cp.checkpoint_id}: {cp.tree_size} entries, root {cp.root_hash}, key {cp.key_id}", highlight=False
    )


@audit_app.command("checkpoints")
def audit_checkpoints() -> None:
    """List signed checkpoints."""
    services, actor = session()
    table = Table("id", "entries", "root", "time (UTC)")
    for cp in services.audit.checkpoints(actor):
        table.add_row(str(cp.checkpoint_id), str(cp.tree_size), cp.root_hash, cp.ts[:19])
    console.print(table)


@audit_app.command("prove")
def audit_prove(
    entry: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Ledger entry number.")],
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Inclusion proof of one entry in the newest signed checkpoint (RFC 6962 audit path)."""
    services, actor = session()
    proof = services.audit.prove(actor, entry)
    cp = proof.checkpoint
    if json_flag:
        json_out(
            {
                "entry": entry,
                "leaf_hash": proof.entry.entry_hash,
                "tree_size": cp.tree_size,
                "root_hash": cp.root_hash,
                "checkpoint": cp.checkpoint_id,
                "signature": cp.signature,
                "audit_path": proof.path,
                "valid": proof.valid,
            }
        )
    else:
        console.print(
            f"entry {entry} ({proof.entry.action} by {proof.entry.actor}) is in checkpoint {cp.checkpoint_id} "
            f"({cp.tree_size} entries, root {cp.root_hash}): "
            f"{'VALID' if proof.valid else 'INVALID'} with a {len(proof.path)}-hash audit path",
            highlight=False,
        )
        for h in proof.path:
            console.print(f"  {h}")
    if not proof.valid:
        raise typer.Exit(code=1)


@audit_app.command("consistency")
def audit_consistency(
    old: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Earlier checkpoint id.")],
    new: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Later checkpoint id.")],
) -> None:
    """Consistency proof: the later checkpoint's ledger extends the earlier one without changing it."""
    services, actor = session()
    proof = services.audit.consistency(actor, old, new)
    console.print(
        f"checkpoint {proof.old.checkpoint_id} ({proof.old.tree_size}) -> {proof.new.checkpoint_id} "
        f"({proof.new.tree_size}): {'CONSISTENT' if proof.valid else 'INCONSISTENT'} ({len(proof.path)} hashes)",
        highlight=False,
    )
    if not proof.valid:
        raise typer.Exit(code=1)

"""The consented gallery: `kuzet enroll` and `kuzet people` (list, approve, reject)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.common import MAX_ID, console, json_out, session
from kuzet.governance.watchlists import parse_expiry

people_app = typer.Typer(help="Enrolments of consenting people: list, approve, reject, re-embed.")


def enroll(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    photos: Annotated[list[Path], typer.Argument(help="Photos that each show only this person's face.")],
    consent: Annotated[
        str, typer.Option("--consent", help="Reference of the signed consent record (required, screened, audited).")
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Camera name or camera purpose the person may be recognised on (repeatable)."),
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Expiry YYYY-MM-DD (default and maximum from the policy).")
    ] = None,
) -> None:
    """Request the enrolment of a consenting person; it matches nobody until a second person approves it."""
    services, actor = session()
    result = services.gallery.enroll(
        actor, name, photos, consent=consent, scope=scope or None, expires=parse_expiry(expires) if expires else None
    )
    person = result.identity
    msg = f"enrolment of {person.name!r} requested (person {person.person_id}, {result.added} photo(s))"
    if result.skipped_duplicates:
        msg += f", {result.skipped_duplicates} photo(s) given twice"
    console.print(msg + "; it needs approval by another user (kuzet people approve ID)", highlight=False)
    sys.stdout.write(f"{person.person_id}\n")


@people_app.callback(invoke_without_command=True)
def people(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, approved, rejected or expired (default: all).")
    ] = None,
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List enrolments with their status, consent, scope and expiry (audited); or approve or reject one."""
    if ctx.invoked_subcommand is not None:
        return
    services, actor = session()
    rows = services.gallery.people(actor, status=status)
    if json_flag:
        json_out([asdict(r) for r in rows])
        return
    table = Table("id", "name", "status", "templates", "consent", "scope", "expires", "enrolled")
    for p in rows:
        table.add_row(
            str(p.identity.person_id),
            p.identity.name,
            p.status,
            str(p.templates),
            p.consent,
            ", ".join(p.scope),
            p.expires_at[:10],
            p.created_at,
        )
    console.print(table)


@people_app.command("approve")
def people_approve(
    person_id: Annotated[
        int, typer.Argument(min=1, max=MAX_ID, help="Person id (from `kuzet people --status pending`).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why it is approved (audited).")] = "",
) -> None:
    """Approve a pending enrolment (approver role; not the person who enrolled them)."""
    services, actor = session()
    services.gallery.approve(actor, person_id, reason=reason)
    console.print(f"approved the enrolment of person {person_id}")


@people_app.command("reject")
def people_reject(
    person_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Person id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is rejected (required, audited).")],
) -> None:
    """Reject a pending enrolment; its templates and photos are destroyed."""
    services, actor = session()
    services.gallery.reject(actor, person_id, reason=reason)
    console.print(f"rejected the enrolment of person {person_id}")


@people_app.command("reembed")
def people_reembed(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Describe stored enrolment and watchlist photos with each configured face model they lack (admin, audited).

    Run once after setting `face_fusion` in the config: people and entries enrolled before have templates of the
    first model only, and a fused gallery cannot match them until they have both.
    """
    services, actor = session()
    result = services.gallery.reembed(actor)
    if json_flag:
        json_out(asdict(result))
        return
    console.print(
        f"added {result.templates} template(s): {result.people} enrolment(s), {result.entries} watchlist entry(ies)",
        highlight=False,
    )
    if result.failed:
        console.print(
            f"no face found in the stored photo of {', '.join(result.failed)}: re-enrol them", highlight=False
        )
        raise typer.Exit(1)

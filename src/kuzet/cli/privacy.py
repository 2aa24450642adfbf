"""Privacy duties: `kuzet hold`, `retention`, `subject`, `keys` and the public `report`."""

from __future__ import annotations

import base64
import json
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.common import MAX_ID, console, session, writable, write_json
from kuzet.core.errors import InputError
from kuzet.core.i18n import DEFAULT, Language
from kuzet.services import views

hold_app = typer.Typer(help="Legal holds: keep what a case needs, whatever retention says.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete what the retention policy says is due.", no_args_is_help=True)
subject_app = typer.Typer(help="Subject access and erasure requests.", no_args_is_help=True)
report_app = typer.Typer(help="Public reports.", no_args_is_help=True)
keys_app = typer.Typer(help="Data encryption keys.", no_args_is_help=True)
Reference = Annotated[str, typer.Option("--justification", help="The request's reference (audited).")]
SubjectPhoto = Annotated[Path, typer.Argument(help="A photo of the person asking.")]


@hold_app.command("add")
def hold_add(
    case: Annotated[str, typer.Option("--case", help="Case reference.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required, audited).")],
    event: Annotated[int | None, typer.Option("--event", min=1, max=MAX_ID, help="Hold this event.")] = None,
    alert: Annotated[int | None, typer.Option("--alert", min=1, max=MAX_ID, help="Hold this alert.")] = None,
    person: Annotated[
        int | None, typer.Option("--person", min=1, max=MAX_ID, help="Hold this person's records.")
    ] = None,
    watchlist: Annotated[
        int | None, typer.Option("--watchlist", min=1, max=MAX_ID, help="Hold this entry's alerts.")
    ] = None,
    violation: Annotated[
        int | None, typer.Option("--violation", min=1, max=MAX_ID, help="Hold this traffic violation.")
    ] = None,
) -> None:
    """Put a record under legal hold: retention and erasure skip it until the case is released."""
    given = {"event": event, "alert": alert, "person": person, "watchlist": watchlist, "violation": violation}
    chosen = [(kind, i) for kind, i in given.items() if i is not None]
    if len(chosen) != 1:
        raise InputError(
            "name exactly one record", hint="use one of --event, --alert, --person, --watchlist, --violation"
        )
    kind, object_id = chosen[0]
    services, actor = session()
    hold_id = services.retention.hold(actor, case, kind, object_id, reason=reason)
    console.print(f"hold {hold_id}: {kind} {object_id} kept for case {case}", highlight=False)


@hold_app.command("release")
def hold_release(
    case: Annotated[str, typer.Option("--case", help="Case reference.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")],
) -> None:
    """Release every hold of a case."""
    services, actor = session()
    n = services.retention.release(actor, case, reason=reason)
    console.print(f"released {n} hold(s) of case {case}", highlight=False)


@hold_app.command("list")
def hold_list() -> None:
    """Active legal holds."""
    services, actor = session()
    table = Table("id", "case", "record", "reason")
    for h in services.retention.holds(actor):
        row = views.hold(h)
        table.add_row(str(row["id"]), str(row["case"]), str(row["object"]), str(row["reason"]))
    console.print(table)


@retention_app.command("run")
def retention_run() -> None:
    """Purge now what the retention policy says is due (audited)."""
    services, actor = session()
    report = services.retention.run(actor)
    console.print(
        f"purged {report.events} event(s), {report.unconfirmed_alerts} unconfirmed and {report.confirmed_alerts} "
        f"confirmed alert(s), {report.recordings} recording(s), {report.over_cap} item(s) over the size cap; "
        f"{report.files} file(s), {report.bytes_freed} bytes; {report.kept_on_hold} kept on hold",
        highlight=False,
    )


@subject_app.command("search")
def subject_search(
    photo: SubjectPhoto,
    justification: Reference,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON here.", callback=writable())
    ] = None,
) -> None:
    """What kuzet holds about a person: gallery records, events, watchlist entries, alerts, media."""
    services, actor = session()
    report = services.subjects.search(actor, photo, justification=justification)
    for key in ("people", "events", "watchlist_entries", "alerts"):
        rows = report[key]
        assert isinstance(rows, list)
        console.print(f"{key.replace('_', ' ')}: {len(rows)}", highlight=False)
        for r in rows:
            console.print(f"  {json.dumps(r, ensure_ascii=False)}", highlight=False)
    if json_out is not None:
        write_json(json_out, report)


@subject_app.command("erase")
def subject_erase(photo: SubjectPhoto, justification: Reference) -> None:
    """Erase a person's gallery data, except what a legal hold or a lawful watchlist entry keeps."""
    services, actor = session()
    result = services.subjects.erase(actor, photo, justification=justification)
    console.print(
        f"erased {result['people_erased']} person record(s), {result['events_erased']} event(s), "
        f"{result['files_deleted']} file(s)",
        highlight=False,
    )
    kept = result["kept"]
    assert isinstance(kept, list)
    for k in kept:
        console.print(f"  kept: {k}", highlight=False)


@report_app.command("transparency")
def report_transparency(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
    out: Annotated[
        Path,
        typer.Option(
            "-o", "--out", help="OUT.html, OUT.json or OUT.pdf.", callback=writable((".html", ".json", ".pdf"))
        ),
    ],
    lang: Annotated[
        Language, typer.Option("--lang", help="Language of the HTML or PDF: kk (Kazakh), ru (Russian) or en (English).")
    ] = DEFAULT,
) -> None:
    """The public transparency report: aggregates only, no names, no faces."""
    from kuzet.governance.report import write_report
    from kuzet.governance.watchlists import parse_expiry

    services, actor = session()
    rep = services.reports.transparency(actor, parse_expiry(start, option="--from"), parse_expiry(end, option="--to"))
    write_report(rep, out, lang)
    console.print(f"wrote {out}", highlight=False)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every template and encrypted file with a new data key (admins)."""
    services, actor = session()
    key = services.keys.rotate(actor)
    console.print(f"data key rotated; active key {key}", highlight=False)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random data key (base64) for KUZET_DATA_KEY."""
    sys.stdout.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")

"""The `kuzet` command line: a thin layer over `kuzet.app.Kuzet`.

Commands act as the signed-in user: `kuzet login` stores a session token in the data directory (readable by its
owner only); `KUZET_TOKEN` in the environment takes precedence.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from kuzet.app import AnalysisResult, Kuzet, TrafficResult, resolve_data_dir
from kuzet.config.loading import load_config
from kuzet.core.errors import AuthError, InputError, KuzetError
from kuzet.core.types import ROLES, Event, User

app = typer.Typer(
    help="kuzet: camera analytics with oversight built in.", no_args_is_help=True, pretty_exceptions_enable=False
)
eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users (admins).", no_args_is_help=True)
watchlist_app = typer.Typer(help="Request, approve, reject and show watchlist entries.", no_args_is_help=True)
review_app = typer.Typer(help="Confirm or reject candidate alerts.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and read the tamper-evident audit ledger.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(config_app, name="config")
app.add_typer(users_app, name="users")
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(review_app, name="review")
app.add_typer(audit_app, name="audit")
media_app = typer.Typer(help="Export stored media (redacted by default).", no_args_is_help=True)
access_app = typer.Typer(help="Time-limited access to unredacted media.", no_args_is_help=True)
hold_app = typer.Typer(help="Legal holds: keep what a case needs, whatever retention says.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete what the retention policy says is due.", no_args_is_help=True)
subject_app = typer.Typer(help="Subject access and erasure requests.", no_args_is_help=True)
report_app = typer.Typer(help="Public reports.", no_args_is_help=True)
keys_app = typer.Typer(help="Data encryption keys.", no_args_is_help=True)
recordings_app = typer.Typer(help="Recordings of live cameras (encrypted; exports audited).", no_args_is_help=True)
people_app = typer.Typer(help="Enrolments of consenting people: list, approve, reject.")
for sub_app, sub_name in [
    (media_app, "media"),
    (access_app, "access"),
    (hold_app, "hold"),
    (retention_app, "retention"),
    (subject_app, "subject"),
    (report_app, "report"),
    (keys_app, "keys"),
    (recordings_app, "recordings"),
    (people_app, "people"),
]:
    app.add_typer(sub_app, name=sub_name)

# No console markup: messages quote names, paths and reasons people typed ("[/x]" must print, not crash).
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)
TOKEN_ENV = "KUZET_TOKEN"
TOKEN_FILE = "session.token"


class _State:
    data_dir: Path | None = None
    config: Path | None = None


state = _State()


@app.callback()
def _main(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Folder for all state (database, media, keys); default $KUZET_HOME."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config file; default DATA_DIR/config.yaml if present.")
    ] = None,
) -> None:
    state.data_dir = data_dir
    state.config = config


def _data_dir() -> Path:
    return resolve_data_dir(state.data_dir)


def _service() -> Kuzet:
    data_dir = _data_dir()
    config_path = state.config
    if config_path is None and (data_dir / "config.yaml").is_file():
        config_path = data_dir / "config.yaml"
    return Kuzet(data_dir, load_config(config_path))


def _fail(exc: KuzetError) -> typer.Exit:
    # Text objects, never markup: a message may quote user input such as a name "[/x]".
    err_console.print(Text.assemble(("error: ", "bold red"), exc.message), highlight=False)
    if exc.hint:
        err_console.print(Text.assemble(("what to do: ", "yellow"), exc.hint), highlight=False)
    return typer.Exit(code=2)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True)
    if not password:
        raise _fail(AuthError("no password was given", hint="pipe it in with --password-stdin"))
    return password


def _signed_in(svc: Kuzet) -> User:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        path = svc.data_dir / TOKEN_FILE
        token = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if not token:
        raise AuthError(
            "not signed in",
            hint="run `kuzet login NAME --password-stdin` (or set KUZET_TOKEN); on a new data directory run "
            "`kuzet init --admin NAME --password-stdin` first",
        )
    return svc.authenticate(token)


def _save_token(data_dir: Path, token: str) -> None:
    path = data_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: an old 0644 token file is tightened here
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")


def _json_out(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# -- set-up and sign-in -----------------------------------------------------------------------------------


@app.command()
def init(
    admin: Annotated[str, typer.Option("--admin", help="Name of the first administrator.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create the data directory and its first administrator."""
    password = _read_password(password_stdin)
    try:
        svc = _service()
        user = svc.init_admin(admin, password)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"initialised {svc.data_dir} with administrator {user.name!r}", highlight=False)


@app.command()
def login(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Sign in; the session token is kept in the data directory (owner-only file)."""
    password = _read_password(password_stdin)
    try:
        svc = _service()
        user, token = svc.login(name, password)
        _save_token(svc.data_dir, token)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"signed in as {user.name} ({', '.join(sorted(user.roles))})", highlight=False)


@app.command()
def logout() -> None:
    """End the current session."""
    try:
        svc = _service()
        path = svc.data_dir / TOKEN_FILE
        if path.is_file():
            token = path.read_text(encoding="utf-8").strip()
            # An expired or revoked session needs only its file removed.
            with contextlib.suppress(AuthError):
                svc.logout(token)
            path.unlink()
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print("signed out")


@app.command()
def whoami() -> None:
    """Show the signed-in user and their roles."""
    try:
        user = _signed_in(_service())
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"{user.name} ({', '.join(sorted(user.roles))})", highlight=False)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="New user's name.")],
    role: Annotated[list[str], typer.Option("--role", help=f"Role (repeatable): {', '.join(ROLES)}.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Add a user (admins only)."""
    password = _read_password(password_stdin)
    try:
        svc = _service()
        user = svc.add_user(_signed_in(svc), name, password, role)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"added {user.name} ({', '.join(sorted(user.roles))})", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """List users and their roles."""
    try:
        svc = _service()
        rows = svc.users(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    table = Table("id", "name", "roles")
    for u in rows:
        table.add_row(str(u.user_id), u.name, ", ".join(sorted(u.roles)))
    console.print(table)


# -- consented gallery and analysis ------------------------------------------------------------------------


@app.command()
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
    from kuzet.governance.watchlists import parse_expiry

    try:
        svc = _service()
        result = svc.enroll(
            _signed_in(svc),
            name,
            photos,
            consent=consent,
            scope=scope or None,
            expires=parse_expiry(expires) if expires else None,
        )
    except KuzetError as exc:
        raise _fail(exc) from None
    msg = (
        f"enrolment of {result.identity.name!r} requested (person {result.identity.person_id}, {result.added} photo(s))"
    )
    if result.skipped_duplicates:
        msg += f", {result.skipped_duplicates} photo(s) given twice"
    console.print(msg + "; it needs approval by another user (kuzet people approve ID)", highlight=False)
    sys.stdout.write(f"{result.identity.person_id}\n")


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
    try:
        svc = _service()
        rows = svc.people(_signed_in(svc), status=status)
    except KuzetError as exc:
        raise _fail(exc) from None
    if json_flag:
        from dataclasses import asdict

        _json_out([asdict(r) for r in rows])
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
    person_id: Annotated[int, typer.Argument(help="Person id (from `kuzet people --status pending`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is approved (audited).")] = "",
) -> None:
    """Approve a pending enrolment (approver role; not the person who enrolled them)."""
    try:
        svc = _service()
        svc.people_approve(_signed_in(svc), person_id, reason=reason)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"approved the enrolment of person {person_id}")


@people_app.command("reject")
def people_reject(
    person_id: Annotated[int, typer.Argument(help="Person id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is rejected (required, audited).")],
) -> None:
    """Reject a pending enrolment; its templates and photos are destroyed."""
    try:
        svc = _service()
        svc.people_reject(_signed_in(svc), person_id, reason=reason)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"rejected the enrolment of person {person_id}")


def _events_table(events: list[Event], title: str) -> Table:
    table = Table("id", "camera", "identity", "score", "start s", "end s", "track", title=title)
    for e in events:
        table.add_row(
            str(e.event_id), e.camera, e.identity, f"{e.score:.3f}", f"{e.start:.2f}", f"{e.end:.2f}", str(e.track_id)
        )
    return table


def _run_analysis(svc: Kuzet, actor: User, source: str, camera: str, fps: float | None) -> AnalysisResult:
    with Progress(
        TextColumn("[bold]analysing[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(escape(source), total=None)

        def on_start(total: int | None) -> None:
            progress.update(task, total=total)

        result = svc.analyze(
            actor, source, camera=camera, fps=fps, on_start=on_start, on_frame=lambda _f: progress.advance(task)
        )
        progress.update(task, total=result.stats.frames, completed=result.stats.frames)
    return result


def _print_summary(result: AnalysisResult) -> None:
    s = result.stats
    if result.traffic is not None and s.faces == 0 and not result.events and not result.alert_ids:
        console.print(f"{s.frames} frames, no faces")
        _print_traffic(result.traffic)
        return
    table = Table(
        "frames", "faces", "tracks", "matched", "alerts", "unknown", "too poor", "noise", "fps", title="summary"
    )
    fps = s.frames / result.seconds if result.seconds > 0 else 0.0
    table.add_row(
        str(s.frames),
        str(s.faces),
        str(s.tracks),
        str(len(result.events)),
        str(len(result.alert_ids)),
        str(s.unknown_tracks),
        str(s.low_quality_tracks),
        str(s.dropped_tracks),
        f"{fps:.1f}",
    )
    console.print(table)
    console.print(_events_table(result.events, f"match events ({len(result.events)})"))
    if result.alert_ids:
        ids = ", ".join(str(i) for i in result.alert_ids)
        console.print(f"{len(result.alert_ids)} watchlist alert(s) wait for review: {ids} (kuzet review list)")
    if s.unknown_tracks:
        console.print(f"{s.unknown_tracks} face track(s) matched nobody: counted, not stored.")
    if result.traffic is not None:
        _print_traffic(result.traffic)


def _print_traffic(t: TrafficResult) -> None:
    table = Table("line", "in", "out", title=f"passages ({len(t.passages)}), {t.stats.tracks} tracked objects")
    for line, counts in t.per_line.items():
        table.add_row(line, str(counts["in"]), str(counts["out"]))
    console.print(table)
    rows = Table("time (s)", "line", "direction", "object", "speed km/h", "plate", title="passages")
    for p in t.passages:
        speed = "-" if p.speed_kmh is None else f"{p.speed_kmh:.1f} ± {p.speed_err_kmh or 0:.1f}"
        rows.add_row(f"{p.pts:.2f}", p.line, p.direction, p.label, speed, p.plate or "-")
    console.print(rows)
    if t.calibration_note:
        console.print(f"speeds from the camera's ground calibration: {t.calibration_note}", highlight=False)
    if t.violations:
        vt = Table("id", "rule", "where", "time (s)", "plate", "evidence sha256", title="violations")
        for v in t.violations:
            vt.add_row(str(v.id), v.kind, v.place, f"{v.at:.2f}", v.plate or "-", v.evidence_sha256[:16])
        console.print(vt)


def traffic_dict(t: TrafficResult) -> dict[str, object]:
    """JSON form of a traffic result."""
    return {
        "per_line": t.per_line,
        "calibration": t.calibration_note,
        "passages": [
            {
                "time_s": p.pts,
                "line": p.line,
                "direction": p.direction,
                "object": p.label,
                "track_id": p.track_id,
                "speed_kmh": p.speed_kmh,
                "speed_uncertainty_kmh": p.speed_err_kmh,
                "plate": p.plate,
            }
            for p in t.passages
        ],
        "violations": [
            {
                "id": v.id,
                "rule": v.kind,
                "where": v.place,
                "time_s": v.at,
                "plate": v.plate,
                "measurements": v.measurements,
                "evidence": v.evidence,
                "evidence_sha256": v.evidence_sha256,
            }
            for v in t.violations
        ],
        "stats": {"frames": t.stats.frames, "tracks": t.stats.tracks, "plates_read": t.stats.plates_read},
    }


@app.command()
def analyze(
    source: Annotated[str, typer.Argument(help="Video file, image, folder of images, or rtsp:// / http:// URL.")],
    camera: Annotated[str, typer.Option("--camera", help="Camera name recorded on the events.")] = "default",
    fps: Annotated[float | None, typer.Option("--fps", help="Analyse this many frames per second.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the events as JSON to this file.")] = None,
    traffic_json: Annotated[
        Path | None, typer.Option("--traffic-json", help="Write passages and violations (traffic cameras) as JSON.")
    ] = None,
) -> None:
    """Find enrolled people and watchlist hits, and (traffic cameras) count, time and check vehicles."""
    try:
        svc = _service()
        actor = _signed_in(svc)
        result = _run_analysis(svc, actor, source, camera, fps)
    except KuzetError as exc:
        raise _fail(exc) from None
    _print_summary(result)
    if json_out is not None:
        _write_json(json_out, [svc.event_dict(e) for e in result.events])
    if traffic_json is not None:
        if result.traffic is None:
            err_console.print(f"camera {camera!r} runs no traffic analytics: nothing written to {traffic_json}")
        else:
            _write_json(traffic_json, traffic_dict(result.traffic))


def _write_json(path: Path, data: object) -> None:
    try:
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _fail(InputError(f"cannot write {path}: {exc.strerror}", hint="check the folder exists")) from None


@app.command()
def events(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera.")] = None,
    identity: Annotated[str | None, typer.Option("--identity", help="Only this person.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many, newest first.")] = 100,
    justification: Annotated[str, typer.Option("--justification", help="Why you are looking (audited).")] = "",
) -> None:
    """List stored match events, newest first (audited)."""
    try:
        svc = _service()
        rows = svc.events(_signed_in(svc), camera=camera, identity=identity, limit=limit, justification=justification)
    except KuzetError as exc:
        raise _fail(exc) from None
    if json_flag:
        _json_out([svc.event_dict(e) for e in rows])
    else:
        console.print(_events_table(rows, f"events ({len(rows)})"))


# -- watchlists ---------------------------------------------------------------------------------------------


@watchlist_app.command("request")
def watchlist_request(
    list_name: Annotated[str, typer.Option("--list", help="Watchlist name.")],
    name: Annotated[str, typer.Option("--name", help="The person's name.")],
    category: Annotated[str, typer.Option("--category", help="Allowed category from the policy file.")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="Type of legal basis, e.g. court-order.")],
    reference: Annotated[str, typer.Option("--reference", help="Reference, e.g. the court order number.")],
    authority: Annotated[str, typer.Option("--authority", help="Issuing authority.")],
    expires: Annotated[str, typer.Option("--expires", help="Expiry date YYYY-MM-DD (within the category maximum).")],
    photo: Annotated[
        Path | None, typer.Option("--photo", help="Face categories: a photo showing only this person's face.")
    ] = None,
    plate: Annotated[str | None, typer.Option("--plate", help="Plate categories: the plate, e.g. 123ABC02.")] = None,
    note: Annotated[str, typer.Option("--note", help="Free-text note (screened like labels).")] = "",
) -> None:
    """Request a watchlist entry; it matches nothing until a different user approves it."""
    from kuzet.governance.watchlists import WatchlistRequest

    try:
        svc = _service()
        actor = _signed_in(svc)
        req = WatchlistRequest.from_text(
            list_name=list_name,
            name=name,
            category=category,
            legal_basis=legal_basis,
            reference=reference,
            authority=authority,
            expires=expires,
            note=note,
        )
        entry_id = svc.watchlist_request(actor, req, photo, plate=plate)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"requested watchlist entry {entry_id}; it needs approval by another user", highlight=False)
    sys.stdout.write(f"{entry_id}\n")


@watchlist_app.command("approve")
def watchlist_approve(
    entry_id: Annotated[int, typer.Argument(help="Entry id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is approved (audited).")] = "",
) -> None:
    """Approve a requested entry (approver role; not its requester)."""
    try:
        svc = _service()
        svc.watchlist_approve(_signed_in(svc), entry_id, reason=reason)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"approved watchlist entry {entry_id}")


@watchlist_app.command("reject")
def watchlist_reject(
    entry_id: Annotated[int, typer.Argument(help="Entry id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is rejected (required, audited).")],
) -> None:
    """Reject a requested entry; its template and photo are destroyed."""
    try:
        svc = _service()
        svc.watchlist_reject(_signed_in(svc), entry_id, reason=reason)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"rejected watchlist entry {entry_id}")


@watchlist_app.command("show")
def watchlist_show(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    status: Annotated[str | None, typer.Option("--status", help="pending, approved, rejected or expired.")] = None,
) -> None:
    """Show watchlist entries (audited)."""
    from dataclasses import asdict

    try:
        svc = _service()
        rows = svc.watchlist_show(_signed_in(svc), status=status)
    except KuzetError as exc:
        raise _fail(exc) from None
    if json_flag:
        _json_out([asdict(r) for r in rows])
        return
    table = Table("id", "list", "name", "category", "legal basis", "expires", "status", "requested by", "approved by")
    for r in rows:
        table.add_row(
            str(r.entry_id),
            r.list_name,
            r.subject_name,
            r.category,
            f"{r.legal_basis} {r.reference} ({r.authority})",
            r.expires_at[:10],
            r.status,
            r.requester,
            r.approver,
        )
    console.print(table)


# -- review -------------------------------------------------------------------------------------------------


@review_app.command("list")
def review_list(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    status: Annotated[str, typer.Option("--status", help="pending, confirmed, rejected or all.")] = "pending",
) -> None:
    """Alerts waiting for review, with score, threshold, best shots, enrolled photo and legal basis."""
    from dataclasses import asdict

    try:
        svc = _service()
        rows = svc.review_list(_signed_in(svc), status=None if status == "all" else status)
    except KuzetError as exc:
        raise _fail(exc) from None
    if json_flag:
        _json_out([asdict(r) for r in rows])
        return
    table = Table(
        "alert", "status", "camera", "time s", "entry", "category / legal basis", "score", "threshold", "reviews"
    )
    for a in rows:
        table.add_row(
            str(a.alert_id),
            a.status,
            a.camera,
            f"{a.start:.1f}-{a.end:.1f}",
            f"{a.entry_id}: {a.subject_name}",
            f"{a.category}: {a.legal_basis} {a.reference} ({a.authority})",
            f"{a.score:.3f}",
            f"{a.threshold:.3f}",
            f"{a.confirmations}/{a.required_reviews}",
        )
    console.print(table)
    for a in rows:
        shots = ", ".join(str(svc.media.path(p)) for p in a.snapshots)
        photo = (
            f"`kuzet media export watchlist {a.entry_id} -o DIR` (encrypted, audited)"
            if a.enrolled_photo
            else "(destroyed)"
        )
        console.print(f"alert {a.alert_id}: best shots {shots}; enrolled photo {photo}", highlight=False)


def _review(alert_id: int, decision: str, reason: str) -> None:
    try:
        svc = _service()
        status = svc.review(_signed_in(svc), alert_id, decision, reason=reason)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"alert {alert_id}: {decision} recorded; the alert is now {status}")


@review_app.command("confirm")
def review_confirm(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    reason: Annotated[str, typer.Option("--reason", help="What you compared (required, audited).")],
) -> None:
    """Confirm that the alert shows the watchlisted person."""
    _review(alert_id, "confirm", reason)


@review_app.command("reject")
def review_reject(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is not the person (required, audited).")],
) -> None:
    """Reject the alert as a false match."""
    _review(alert_id, "reject", reason)


# -- audit --------------------------------------------------------------------------------------------------


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
    from kuzet.audit.verify import load_trusted

    try:
        held = [cp for f in trusted or [] for cp in load_trusted(f)]
        svc = _service()
        report = svc.audit_verify(_signed_in(svc), trusted=held)
    except KuzetError as exc:
        raise _fail(exc) from None
    if report.ok:
        extra = f"; extends all {report.trusted} trusted checkpoint(s)" if report.trusted else ""
        console.print(
            f"ledger OK: {report.entries} entries, {report.checkpoints} signed checkpoints verified{extra}",
            highlight=False,
        )
        return
    where = f" (first bad entry: {report.first_bad})" if report.first_bad else ""
    err_console.print(Text.assemble(("LEDGER TAMPERED: ", "bold red"), f"{report.problem}{where}"))
    raise typer.Exit(code=1)


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

    try:
        source: LedgerSource
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
    except KuzetError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail(InputError(f"cannot use {state}: {exc.strerror}", hint="give a writable folder")) from None
    if result.ok:
        console.print(f"witness OK: {result.message}", highlight=False)
        return
    err_console.print(Text.assemble(("WITNESS ALARM: ", "bold red"), result.message))
    raise typer.Exit(code=1)


@audit_app.command("rotate-key")
def audit_rotate_key() -> None:
    """Hand checkpoint signing to a new key; the old key signs the hand-over into the ledger (admins)."""
    try:
        svc = _service()
        key_id = svc.audit_rotate_key(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"checkpoints are now signed by key {key_id}; the hand-over is in the ledger", highlight=False)


@audit_app.command("log")
def audit_log(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    start: Annotated[int, typer.Option("--from", min=1, help="First entry number.")] = 1,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many entries.")] = 1000,
    action: Annotated[str | None, typer.Option("--action", help="Only this action, e.g. watchlist.refused.")] = None,
) -> None:
    """Read the ledger (audited)."""
    from dataclasses import asdict

    try:
        svc = _service()
        rows = svc.audit_log(_signed_in(svc), start=start, limit=limit, action=action)
    except KuzetError as exc:
        raise _fail(exc) from None
    if json_flag:
        _json_out([asdict(r) for r in rows])
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
    try:
        svc = _service()
        cp = svc.audit_checkpoint(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    if json_flag:
        sys.stdout.write(json.dumps(cp.signed_json(), sort_keys=True) + "\n")
        return
    console.print(
        f"checkpoint {cp.checkpoint_id}: {cp.tree_size} entries, root {cp.root_hash}, key {cp.key_id}", highlight=False
    )


@audit_app.command("checkpoints")
def audit_checkpoints() -> None:
    """List signed checkpoints."""
    try:
        svc = _service()
        rows = svc.checkpoints(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    table = Table("id", "entries", "root", "time (UTC)")
    for cp in rows:
        table.add_row(str(cp.checkpoint_id), str(cp.tree_size), cp.root_hash, cp.ts[:19])
    console.print(table)


@audit_app.command("prove")
def audit_prove(
    entry: Annotated[int, typer.Argument(help="Ledger entry number.")],
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Inclusion proof of one entry in the newest signed checkpoint (RFC 6962 audit path)."""
    try:
        svc = _service()
        proof = svc.audit_prove(_signed_in(svc), entry)
    except KuzetError as exc:
        raise _fail(exc) from None
    data = {
        "entry": entry,
        "leaf_hash": proof.entry.entry_hash,
        "tree_size": proof.checkpoint.tree_size,
        "root_hash": proof.checkpoint.root_hash,
        "checkpoint": proof.checkpoint.checkpoint_id,
        "signature": proof.checkpoint.signature,
        "audit_path": proof.path,
        "valid": proof.valid,
    }
    if json_flag:
        _json_out(data)
    else:
        console.print(
            f"entry {entry} ({proof.entry.action} by {proof.entry.actor}) is in checkpoint "
            f"{proof.checkpoint.checkpoint_id} ({proof.checkpoint.tree_size} entries, "
            f"root {proof.checkpoint.root_hash}): "
            f"{'VALID' if proof.valid else 'INVALID'} with a {len(proof.path)}-hash audit path",
            highlight=False,
        )
        for h in proof.path:
            console.print(f"  {h}")
    if not proof.valid:
        raise typer.Exit(code=1)


@audit_app.command("consistency")
def audit_consistency(
    old: Annotated[int, typer.Argument(help="Earlier checkpoint id.")],
    new: Annotated[int, typer.Argument(help="Later checkpoint id.")],
) -> None:
    """Consistency proof: the later checkpoint's ledger extends the earlier one without changing it."""
    try:
        svc = _service()
        proof = svc.audit_consistency(_signed_in(svc), old, new)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(
        f"checkpoint {proof.old.checkpoint_id} ({proof.old.tree_size}) -> {proof.new.checkpoint_id} "
        f"({proof.new.tree_size}): {'CONSISTENT' if proof.valid else 'INCONSISTENT'} ({len(proof.path)} hashes)",
        highlight=False,
    )
    if not proof.valid:
        raise typer.Exit(code=1)


# -- privacy ------------------------------------------------------------------------------------------------


@app.command()
def redact(
    source: Annotated[Path, typer.Argument(help="Image or video to redact.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the redacted copy.")],
    method: Annotated[str, typer.Option("--method", help="pixelate or blur.")] = "pixelate",
) -> None:
    """Hide every face and licence plate in an image or video (no sign-in needed: nothing is stored)."""
    from kuzet.governance.redaction import production_redactor, redact_video
    from kuzet.ingest.images import is_still_image, load_image
    from kuzet.store.media import encode_jpeg

    if method not in ("pixelate", "blur"):
        raise _fail(InputError(f"--method {method!r} is unknown", hint="use pixelate or blur"))
    try:
        cfg = load_config(state.config)
        if not source.is_file():
            raise InputError(f"{source} does not exist or is not a file", hint="give an image or video file")
        if is_still_image(source):
            redactor = production_redactor(cfg.redaction, method=method)
            result = redactor.redact_image(load_image(source, max_pixels=cfg.ingest.max_pixels))
            if out.suffix.lower() in (".jpg", ".jpeg"):
                out.write_bytes(encode_jpeg(result.image))
            else:
                from PIL import Image

                Image.fromarray(result.image).save(out)
            console.print(f"{out}: {result.faces} face(s) and {result.plates} plate(s) hidden", highlight=False)
            return
        # Video: faces searched every `redaction.video_every` frames, boxes carried (and held) in between.
        redactor = production_redactor(cfg.redaction, video=True, method=method)
        with Progress(
            TextColumn("[bold]redacting[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        ) as progress:
            task = progress.add_task("frames", total=None)
            stats = redact_video(
                source,
                out,
                redactor,
                face_every=cfg.redaction.video_every,
                hold_s=cfg.redaction.hold_s,
                on_start=lambda n: progress.update(task, total=n),
                on_frame=lambda: progress.advance(task),
            )
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(
        f"{out}: {stats.frames} frames ({stats.width}x{stats.height}) in {stats.seconds:.1f} s = "
        f"{stats.fps:.1f} frames/s, {stats.realtime_factor:.2f}x real time",
        highlight=False,
    )


@media_app.command("export")
def media_export(
    kind: Annotated[str, typer.Argument(help="event, alert or watchlist (an entry's enrolled photo).")],
    object_id: Annotated[int, typer.Argument(help="Its id.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to write the JPEG file(s) to.")],
    unredacted: Annotated[bool, typer.Option("--unredacted", help="The original, unredacted media.")] = False,
    justification: Annotated[str, typer.Option("--justification", help="Why (required for --unredacted).")] = "",
) -> None:
    """Export an event's snapshot or an alert's best shots (audited)."""
    try:
        svc = _service()
        files = svc.media_export(_signed_in(svc), kind, object_id, unredacted=unredacted, justification=justification)
        out.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(files):
            name = out / f"{kind}-{object_id}-{i + 1}{'-unredacted' if unredacted else ''}.jpg"
            name.write_bytes(data)
            console.print(str(name), highlight=False)
    except KuzetError as exc:
        raise _fail(exc) from None


@recordings_app.command("list")
def recordings_list(
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera's recordings.")] = None,
) -> None:
    """Kept recording segments of live cameras, newest first (audited)."""
    try:
        svc = _service()
        found = svc.recordings(_signed_in(svc), camera=camera)
    except KuzetError as exc:
        raise _fail(exc) from None
    table = Table(title=f"{len(found)} recording segment(s)")
    for col in ("camera", "written (UTC)", "MB", "path"):
        table.add_column(col)
    for r in found:
        table.add_row(r.camera, r.written_at.strftime("%Y-%m-%d %H:%M:%S"), f"{r.bytes / 1e6:.1f}", r.path)
    console.print(table)


@recordings_app.command("export")
def recordings_export(
    path: Annotated[str, typer.Argument(help="A path from `kuzet recordings list`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="MP4 file to write.")],
    justification: Annotated[str, typer.Option("--justification", help="Why (required, audited).")] = "",
    unredacted: Annotated[
        bool, typer.Option("--unredacted", help="The camera's original video (reviewer/auditor or a grant).")
    ] = False,
) -> None:
    """Export a recording segment: faces and plates hidden unless --unredacted (audited either way)."""
    try:
        svc = _service()
        svc.recording_export(_signed_in(svc), path, out, unredacted=unredacted, justification=justification)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(str(out), highlight=False)


@access_app.command("grant")
def access_grant(
    name: Annotated[str, typer.Argument(help="User to grant unredacted access to.")],
    hours: Annotated[float, typer.Option("--hours", help="How long the grant lasts (at most 72).")],
    justification: Annotated[str, typer.Option("--justification", help="Why (required, audited).")],
) -> None:
    """Let a user see unredacted media for a limited time (admins)."""
    try:
        svc = _service()
        until = svc.access_grant(_signed_in(svc), name, hours=hours, justification=justification)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"{name} may see unredacted media until {until.isoformat(timespec='minutes')}", highlight=False)


@hold_app.command("add")
def hold_add(
    case: Annotated[str, typer.Option("--case", help="Case reference.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required, audited).")],
    event: Annotated[int | None, typer.Option("--event", help="Hold this event.")] = None,
    alert: Annotated[int | None, typer.Option("--alert", help="Hold this alert.")] = None,
    person: Annotated[int | None, typer.Option("--person", help="Hold this person's records.")] = None,
    watchlist: Annotated[int | None, typer.Option("--watchlist", help="Hold this entry's alerts.")] = None,
    violation: Annotated[int | None, typer.Option("--violation", help="Hold this traffic violation.")] = None,
) -> None:
    """Put a record under legal hold: retention and erasure skip it until the case is released."""
    chosen = [
        (t, i)
        for t, i in (
            ("event", event),
            ("alert", alert),
            ("person", person),
            ("watchlist", watchlist),
            ("violation", violation),
        )
        if i is not None
    ]
    if len(chosen) != 1:
        raise _fail(
            KuzetError(
                "name exactly one record", hint="use one of --event, --alert, --person, --watchlist, --violation"
            )
        )
    try:
        svc = _service()
        hold_id = svc.hold_add(_signed_in(svc), case, chosen[0][0], int(chosen[0][1]), reason=reason)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"hold {hold_id}: {chosen[0][0]} {chosen[0][1]} kept for case {case}", highlight=False)


@hold_app.command("release")
def hold_release(
    case: Annotated[str, typer.Option("--case", help="Case reference.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")],
) -> None:
    """Release every hold of a case."""
    try:
        svc = _service()
        n = svc.hold_release(_signed_in(svc), case, reason=reason)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"released {n} hold(s) of case {case}", highlight=False)


@hold_app.command("list")
def hold_list() -> None:
    """Active legal holds."""
    try:
        svc = _service()
        rows = svc.holds(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    table = Table("id", "case", "record", "reason")
    for r in rows:
        table.add_row(str(r["id"]), str(r["case"]), str(r["object"]), str(r["reason"]))
    console.print(table)


@retention_app.command("run")
def retention_run() -> None:
    """Purge now what the retention policy says is due (audited)."""
    try:
        svc = _service()
        report = svc.retention_run(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(
        f"purged {report.events} event(s), {report.unconfirmed_alerts} unconfirmed and {report.confirmed_alerts} "
        f"confirmed alert(s), {report.recordings} recording(s), {report.over_cap} item(s) over the size cap; "
        f"{report.files} file(s), {report.bytes_freed} bytes; {report.kept_on_hold} kept on hold",
        highlight=False,
    )


@subject_app.command("search")
def subject_search(
    photo: Annotated[Path, typer.Argument(help="A photo of the person asking.")],
    justification: Annotated[str, typer.Option("--justification", help="The request's reference (audited).")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
) -> None:
    """What kuzet holds about a person: gallery records, events, watchlist entries, alerts, media."""
    try:
        svc = _service()
        report = svc.subject_search(_signed_in(svc), photo, justification=justification)
    except KuzetError as exc:
        raise _fail(exc) from None
    for key in ("people", "events", "watchlist_entries", "alerts"):
        rows = report[key]
        assert isinstance(rows, list)
        console.print(f"{key.replace('_', ' ')}: {len(rows)}", highlight=False)
        for r in rows:
            console.print(f"  {json.dumps(r, ensure_ascii=False)}", highlight=False)
    if json_out is not None:
        _write_json(json_out, report)


@subject_app.command("erase")
def subject_erase(
    photo: Annotated[Path, typer.Argument(help="A photo of the person asking.")],
    justification: Annotated[str, typer.Option("--justification", help="The request's reference (audited).")],
) -> None:
    """Erase a person's gallery data, except what a legal hold or a lawful watchlist entry keeps."""
    try:
        svc = _service()
        result = svc.subject_erase(_signed_in(svc), photo, justification=justification)
    except KuzetError as exc:
        raise _fail(exc) from None
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
    out: Annotated[Path, typer.Option("-o", "--out", help="OUT.html, OUT.json or OUT.pdf.")],
) -> None:
    """The public transparency report: aggregates only, no names, no faces."""
    from kuzet.governance.report import write_report
    from kuzet.governance.watchlists import parse_expiry

    try:
        svc = _service()
        rep = svc.transparency_report(
            _signed_in(svc), parse_expiry(start, option="--from"), parse_expiry(end, option="--to")
        )
        write_report(rep, out)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"wrote {out}", highlight=False)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every template and encrypted file with a new data key (admins)."""
    try:
        svc = _service()
        key = svc.keys_rotate(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"data key rotated; active key {key}", highlight=False)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random data key (base64) for KUZET_DATA_KEY."""
    import base64
    import secrets

    sys.stdout.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")


# -- web ---------------------------------------------------------------------------------------------------


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """How kuzet runs uvicorn.

    uvicorn's own proxy handling is off (it would believe X-Forwarded-For from loopback); kuzet reads that header
    itself, only from the config's `api.trusted_proxies`.
    """
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        "timeout_keep_alive": 30,
        "proxy_headers": False,
        "forwarded_allow_ips": "",
    }


def serve_app(svc: Kuzet, host: str, port: int) -> None:
    """Run the API and dashboard until interrupted."""
    import uvicorn

    from kuzet.api.app import create_app

    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            "note: serving beyond this machine; put kuzet behind TLS (a reverse proxy) "
            "so cookies and tokens stay secret"
        )
    uvicorn.run(create_app(svc), **uvicorn_options(host, port))


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8080,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the dashboard."""
    try:
        svc = _service()
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(f"kuzet dashboard on http://{host}:{port}/ (API docs at /docs); Ctrl-C stops it", highlight=False)
    serve_app(svc, host, port)


@app.command("run")
def run_live(
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config with the cameras (same as the global --config).")
    ] = None,
    camera: Annotated[
        list[str] | None,
        typer.Option("--camera", help="Run only this camera (repeatable); default: every enabled one."),
    ] = None,
    serve_too: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Also serve the API, dashboard and /metrics in this process.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to serve on (with --serve).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port (with --serve).")] = 8080,
) -> None:
    """Run every live camera in the config until stopped (SIGTERM or Ctrl-C), one worker process per camera."""
    import logging
    import threading

    from kuzet.runtime.supervisor import Supervisor

    if config is not None:
        state.config = config
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        svc = _service()
        actor = _signed_in(svc)
        supervisor = Supervisor(svc, actor, secrets=svc.secrets(), cameras=camera or None)
    except KuzetError as exc:
        raise _fail(exc) from None
    server = None
    thread = None
    if serve_too:
        import uvicorn

        from kuzet.api.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(svc), **uvicorn_options(host, port)))
        thread = threading.Thread(target=server.run, name="api", daemon=True)
        thread.start()
        console.print(f"dashboard and API on http://{host}:{port}/ (metrics at /metrics)", highlight=False)
    names = ", ".join(supervisor.slots)
    console.print(f"running {len(supervisor.slots)} camera(s): {names}; `kuzet status` shows them; Ctrl-C stops")
    try:
        supervisor.run_forever()
    except KuzetError as exc:
        raise _fail(exc) from None
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(10)
    console.print("stopped: every camera committed what it had decided")


@app.command("status")
def live_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Live cameras as `kuzet run` last reported them: state, reason, frames, reconnects."""
    import time
    from dataclasses import asdict

    try:
        svc = _service()
        status = svc.live_status(_signed_in(svc))
    except KuzetError as exc:
        raise _fail(exc) from None
    if as_json:
        _json_out(asdict(status))
        return
    age = time.time() - status.updated
    table = Table(title=f"kuzet run ({status.state}, updated {age:.0f} s ago)")
    for col in ("camera", "state", "since", "analysed", "dropped", "reconnects", "restarts", "events", "reason"):
        table.add_column(col)
    for c in status.cameras:
        table.add_row(
            c.camera,
            c.state,
            f"{time.time() - c.since:.0f} s",
            str(c.frames_analysed),
            str(c.frames_dropped),
            str(c.reconnects),
            str(c.worker_restarts),
            str(c.events + c.alerts + c.passages + c.violations),
            c.reason,
        )
    console.print(table)


# -- demo, config, eval ---------------------------------------------------------------------------------------


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep earlier demo data instead of starting afresh.")] = False,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the dashboard on localhost afterwards.")
    ] = True,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Dashboard port.")] = 8080,
) -> None:
    """A whole lawful-watchlist scenario on images shipped with installed packages, then the dashboard."""
    from kuzet.demo import run_demo

    root = _data_dir() / "demo"
    if root.exists() and not keep:
        shutil.rmtree(root)
    try:
        run_demo(root, config=load_config(state.config), console=console, progress_console=err_console)
    except KuzetError as exc:
        raise _fail(exc) from None
    if serve_after:
        console.print(
            f"7. the dashboard is at http://127.0.0.1:{port}/ : sign in with a demo user above; Ctrl-C stops it",
            highlight=False,
        )
        serve_app(Kuzet(root, load_config(state.config)), "127.0.0.1", port)


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="YAML config file to validate.")]) -> None:
    """Validate a config file and explain every problem."""
    try:
        cfg = load_config(file)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print(
        f"{file}: OK (face detector {cfg.face_detector.type}, embedder {cfg.face_embedder.type}, "
        f"threshold {cfg.recognition.threshold}, {len(cfg.cameras)} camera(s))",
        highlight=False,
    )


@config_app.command("policy")
def config_policy(file: Annotated[Path, typer.Argument(help="Watchlist policy YAML to validate.")]) -> None:
    """Validate a watchlist policy file (allowed categories must not be prohibited ones)."""
    from kuzet.governance.policy import load_policy

    try:
        policy = load_policy(file)
    except KuzetError as exc:
        raise _fail(exc) from None
    cats = ", ".join(
        f"{n} (max {c.max_days} d, {c.required_reviews} reviewer(s))" for n, c in policy.model.categories.items()
    )
    console.print(f"{file}: OK; categories: {cats}", highlight=False)


@eval_app.command("pairs")
def eval_pairs(
    root: Annotated[Path, typer.Option("--root", help="Folder the pair paths are relative to.")],
    pairs: Annotated[Path, typer.Option("--pairs", help="CSV of img1,img2,same.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures as JSON here.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the DET curve to this PNG.")] = None,
) -> None:
    """Face verification on LFW-style pairs (accuracy, TAR@FAR, EER, AUC)."""
    from kuzet.eval.runner import run_pairs

    try:
        cfg = load_config(state.config)
        report = run_pairs(root, pairs, config=cfg, plot=plot, console=err_console)
    except KuzetError as exc:
        raise _fail(exc) from None
    table = Table("metric", "value", title=f"verification: {pairs}")
    table.add_row("pairs", str(report.n_pairs))
    table.add_row("pairs with no face found (errors)", str(report.n_no_face))
    table.add_row("accuracy (10-fold)", f"{report.accuracy:.4f} ± {report.accuracy_std:.4f}")
    for far, tar in report.tar_at_far.items():
        table.add_row(f"TAR @ FAR {far}", f"{tar:.4f}")
    table.add_row("EER", f"{report.eer:.4f}")
    table.add_row("ROC AUC", f"{report.auc:.4f}")
    table.add_row("threshold (median of folds)", f"{report.threshold:.4f}")
    console.print(table)
    if json_out is not None:
        _write_json(json_out, report.to_json())


@eval_app.command("redact")
def eval_redact(
    root: Annotated[Path, typer.Option("--root", help="Folder the image paths of the ground truth are relative to.")],
    gt: Annotated[Path, typer.Option("--gt", help="Ground truth in the WIDER FACE text format.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures (and every miss) here.")] = None,
) -> None:
    """Redaction as it hides faces: share of faces hidden per face width and subset, and image area obscured."""
    from kuzet.eval.runner import run_redact_eval

    try:
        report = run_redact_eval(root, gt, config=load_config(state.config), console=err_console)
    except KuzetError as exc:
        raise _fail(exc) from None
    hidden = report["hidden"]
    counts = report["faces_by_width"]
    assert isinstance(hidden, dict)
    assert isinstance(counts, dict)
    table = Table("face width (px)", "faces", "hidden", title=f"redaction: {gt} ({report['n_images']} images)")
    for bucket, share in hidden.items():
        n = counts.get(bucket, report["n_faces"])
        table.add_row(bucket, str(n), "-" if share is None else f"{share:.1%}")
    console.print(table)
    subsets = report.get("hidden_by_subset")
    if isinstance(subsets, dict):
        console.print(
            "hidden by subset: " + ", ".join(f"{k} {'-' if v is None else f'{v:.1%}'}" for k, v in subsets.items())
        )
    console.print(
        f"image area obscured: {report['area_obscured']:.1%}; {report['ms_per_image']} ms per image", highlight=False
    )
    if json_out is not None:
        _write_json(json_out, report)


@eval_app.command("detect")
def eval_detect(
    root: Annotated[Path, typer.Option("--root", help="Folder the image paths of the ground truth are relative to.")],
    gt: Annotated[Path, typer.Option("--gt", help="Ground truth in the WIDER FACE text format.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            "--detector", help="centerface, yunet, dlib-hog or recall-first (default: the configured detector)."
        ),
    ] = None,
) -> None:
    """Face detection: recall and AP at IoU 0.5 (per easy/medium/hard subset when labelled), false positives."""
    from kuzet.eval.runner import run_detect_eval

    try:
        report = run_detect_eval(root, gt, config=load_config(state.config), detector=detector, console=err_console)
    except KuzetError as exc:
        raise _fail(exc) from None
    recall, ap = report["recall"], report["ap"]
    assert isinstance(recall, dict)
    assert isinstance(ap, dict)
    table = Table("subset", "recall", "AP", title=f"detection ({report['detector']}): {gt}")
    for k in recall:
        table.add_row(k, "-" if recall[k] is None else f"{recall[k]:.3f}", f"{ap[k]:.3f}")
    console.print(table)
    console.print(
        f"{report['n_faces']} faces in {report['n_images']} images; {report['fp_per_image']} false positives per "
        f"image; {report['ms_per_image']} ms per image",
        highlight=False,
    )
    if json_out is not None:
        _write_json(json_out, report)


@eval_app.command("plates")
def eval_plates(
    labels: Annotated[Path, typer.Option("--labels", help="CSV of file,region,x,y,w,h,plate.")],
    root: Annotated[Path, typer.Option("--root", help="Folder the label paths are relative to.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures and every read here.")] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format", help="Plate formats to read with (repeat: kz, eu, us, br); default each image's region."
        ),
    ] = None,
) -> None:
    """Licence-plate reading: detected, exact match rate, character error rate, per region, ms per image."""
    from kuzet.eval.plates import run_plates

    try:
        with Progress(
            TextColumn("reading plates"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
        ) as bar:
            task = bar.add_task("plates", total=None)
            report = run_plates(
                labels, root, formats=formats, progress=lambda i, n: bar.update(task, completed=i, total=n)
            )
    except KuzetError as exc:
        raise _fail(exc) from None
    table = Table("region", "images", "detected", "exact", "CER", title=f"plates: {labels}")
    for region, row in [*report["per_region"].items(), ("all", report)]:
        table.add_row(region, str(row["n"]), f"{row['detected']:.3f}", f"{row['exact']:.3f}", f"{row['cer']:.3f}")
    console.print(table)
    console.print(f"{report['ms_per_image']:.0f} ms per image", highlight=False)
    if json_out is not None:
        _write_json(json_out, report)


@eval_app.command("make-pairs")
def eval_make_pairs(
    labels: Annotated[Path, typer.Option("--labels", help="CSV of file,identity.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Pairs CSV to write.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling different-person pairs.")] = 0,
) -> None:
    """Build LFW-style pairs: every same-person pair plus as many random different-person pairs."""
    from kuzet.eval.pairs import make_pairs

    try:
        rows = make_pairs(labels, seed=seed)
    except KuzetError as exc:
        raise _fail(exc) from None
    text = "img1,img2,same\n" + "".join(f"{p.img1},{p.img2},{int(p.same)}\n" for p in rows)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {len(rows)} pairs ({sum(p.same for p in rows)} same) to {out}", highlight=False)


@app.command()
def bench(
    data: Annotated[
        Path | None, typer.Option("--data", help="The shared data folder (faces/, video/); default $KUZET_DATA.")
    ] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="Write the figures as JSON here.")] = Path(
        "bench/results/bench.json"
    ),
    videos: Annotated[
        list[str] | None, typer.Option("--video", help="Video file names under video/ (repeat); default all three.")
    ] = None,
    baseline_frames: Annotated[
        int, typer.Option("--baseline-frames", min=1, help="Frames per video for the slow per-frame loop.")
    ] = 60,
    gallery_sizes: Annotated[
        list[int] | None, typer.Option("--gallery-size", min=100, help="Gallery sizes (repeat); default 10k 100k 1M.")
    ] = None,
    no_video: Annotated[bool, typer.Option("--no-video", help="Skip the video figures.")] = False,
    chips: Annotated[int, typer.Option("--chips", min=1, help="Face chips for the embedder figures.")] = 96,
) -> None:
    """Speed: faces/s per embedder runtime, analyze frames/s against the face_recognition way, gallery latency."""
    from kuzet.bench import BenchOptions, run_bench

    root = data or Path(os.environ.get("KUZET_DATA", "../shared/data"))
    if not (root / "faces").is_dir() or not (root / "video").is_dir():
        raise _fail(InputError(f"{root} has no faces/ and video/ folders", hint="pass --data ../shared/data"))
    options = BenchOptions(data=root, baseline_frames=baseline_frames, max_chips=chips)
    if videos:
        missing = [v for v in videos if not (root / "video" / v).is_file()]
        if missing:
            raise _fail(InputError(f"no such video under {root / 'video'}: {', '.join(missing)}"))
        options.videos = videos
    if no_video:
        options.videos = []
    if gallery_sizes:
        options.gallery_sizes = gallery_sizes
    report = run_bench(options, progress=lambda msg: err_console.print(Text(f"{msg}...", style="dim")))
    _print_bench(report)
    _write_json(out, report)
    console.print(f"wrote {out}", highlight=False)


def _print_bench(report: dict[str, object]) -> None:
    emb = report["embedders"]
    assert isinstance(emb, dict)
    table = Table("runtime", "faces/s", "x dlib", "min cosine to dlib", title=f"face descriptor ({emb['chips']} chips)")
    for runtime, row in emb.items():
        if not isinstance(row, dict):
            continue
        if "error" in row:
            table.add_row(runtime, "-", "-", row["error"])
            continue
        table.add_row(
            f"{runtime} ({row['device']})",
            f"{row['faces_per_s']:.1f}",
            f"{row.get('speedup_vs_dlib', 1.0):.1f}",
            f"{row.get('min_cosine_to_dlib', 1.0):.6f}",
        )
    console.print(table)
    analyze = report.get("analyze")
    if isinstance(analyze, dict):
        table = Table(
            "video",
            "kuzet frames/s (x)",
            "min_face 40 (x)",
            "no motion gate (x)",
            "CPU s gated / not",
            "face_recognition way",
            title="frames per second",
        )
        for video, row in analyze.items():
            d, m, n = row["default"], row["min_face_40"], row["no_motion_gate"]
            table.add_row(
                video,
                f"{d['fps']:.1f} ({d['speedup']:.1f})",
                f"{m['fps']:.1f} ({m['speedup']:.1f})",
                f"{n['fps']:.1f} ({n['speedup']:.1f})",
                f"{d['cpu_s']:.1f} / {n['cpu_s']:.1f}",
                f"{row['face_recognition_style']['fps']:.2f}",
            )
        console.print(table)
    gallery = report.get("gallery")
    if isinstance(gallery, dict):
        table = Table("templates", "exact p50/p99 ms", "FAISS p50/p99 ms", "FAISS recall@1", "index build s")
        for size, row in gallery.items():
            table.add_row(
                size,
                f"{row['exact']['p50_ms']:.2f} / {row['exact']['p99_ms']:.2f}",
                f"{row['faiss_ivf']['p50_ms']:.2f} / {row['faiss_ivf']['p99_ms']:.2f}",
                f"{row['faiss_ivf']['recall_at_1']:.4f}",
                f"{row['index_build_s']:.1f}",
            )
        console.print(table)


def main() -> None:
    """Console-script entry point."""
    app()

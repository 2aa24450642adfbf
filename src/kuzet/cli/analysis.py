"""Analysis and what it stored: `kuzet analyze` and `kuzet events`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kuzet.cli import common
from kuzet.cli.common import console, err_console, session, writable, write_json
from kuzet.core.types import Event, User
from kuzet.services import views
from kuzet.services.analysis import AnalysisResult, TrafficResult
from kuzet.services.container import Services


def events_table(events: list[Event], title: str) -> Table:
    """Match events as a table."""
    table = Table("id", "camera", "identity", "score", "start s", "end s", "track", title=title)
    for e in events:
        table.add_row(
            str(e.event_id), e.camera, e.identity, f"{e.score:.3f}", f"{e.start:.2f}", f"{e.end:.2f}", str(e.track_id)
        )
    return table


def _run_analysis(services: Services, actor: User, source: str, camera: str, fps: float | None) -> AnalysisResult:
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

        result = services.analysis.analyze(
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
    counts = (s.frames, s.faces, s.tracks, len(result.events), len(result.alert_ids), s.unknown_tracks)
    table.add_row(*(str(n) for n in counts), str(s.low_quality_tracks), str(s.dropped_tracks), f"{fps:.1f}")
    console.print(table)
    console.print(events_table(result.events, f"match events ({len(result.events)})"))
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


def analyze(
    source: Annotated[str, typer.Argument(help="Video file, image, folder of images, or rtsp:// / http:// URL.")],
    camera: Annotated[str, typer.Option("--camera", help="Camera name recorded on the events.")] = "default",
    fps: Annotated[float | None, typer.Option("--fps", help="Analyse this many frames per second.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the events as JSON to this file.", callback=writable())
    ] = None,
    traffic_json: Annotated[
        Path | None,
        typer.Option(
            "--traffic-json", help="Write passages and violations (traffic cameras) as JSON.", callback=writable()
        ),
    ] = None,
) -> None:
    """Find enrolled people and watchlist hits, and (traffic cameras) count, time and check vehicles."""
    services, actor = session()
    result = _run_analysis(services, actor, source, camera, fps)
    _print_summary(result)
    if json_out is not None:
        write_json(json_out, [views.event(e, services.ctx.media) for e in result.events])
    if traffic_json is not None:
        if result.traffic is None:
            err_console.print(f"camera {camera!r} runs no traffic analytics: nothing written to {traffic_json}")
        else:
            write_json(traffic_json, views.traffic_result(result.traffic))


def events(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera.")] = None,
    identity: Annotated[str | None, typer.Option("--identity", help="Only this person.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many, newest first.")] = 100,
    justification: Annotated[str, typer.Option("--justification", help="Why you are looking (audited).")] = "",
) -> None:
    """List stored match events, newest first (audited)."""
    services, actor = session()
    rows = services.records.events(actor, camera=camera, identity=identity, limit=limit, justification=justification)
    if json_flag:
        common.json_out([views.event(e, services.ctx.media) for e in rows])
    else:
        console.print(events_table(rows, f"events ({len(rows)})"))

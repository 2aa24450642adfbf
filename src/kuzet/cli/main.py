"""The `kuzet` command line: a thin layer over `kuzet.app.Kuzet`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kuzet.app import AnalysisResult, Kuzet, resolve_data_dir
from kuzet.config.loading import load_config
from kuzet.core.errors import InputError, KuzetError
from kuzet.core.types import Event

app = typer.Typer(
    help="kuzet: camera analytics with oversight built in.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True)


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
        Path | None,
        typer.Option("--config", help="YAML config file; default DATA_DIR/config.yaml if present."),
    ] = None,
) -> None:
    state.data_dir = data_dir
    state.config = config


def _service() -> Kuzet:
    data_dir = resolve_data_dir(state.data_dir)
    config_path = state.config
    if config_path is None and (data_dir / "config.yaml").is_file():
        config_path = data_dir / "config.yaml"
    return Kuzet(data_dir, load_config(config_path))


def _fail(exc: KuzetError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
    if exc.hint:
        err_console.print(f"[yellow]what to do:[/] {exc.hint}", highlight=False)
    return typer.Exit(code=2)


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    photos: Annotated[list[Path], typer.Argument(help="Photos that each show only this person's face.")],
) -> None:
    """Enrol a person in the gallery from one or more photos."""
    try:
        svc = _service()
        result = svc.enroll(name, photos)
    except KuzetError as exc:
        raise _fail(exc) from None
    msg = f"enrolled {result.identity.name!r} (id {result.identity.person_id}): {result.added} template(s) added"
    if result.skipped_duplicates:
        msg += f", {result.skipped_duplicates} photo(s) already enrolled"
    console.print(msg, highlight=False)


@app.command()
def people() -> None:
    """List enrolled people."""
    try:
        rows = _service().people()
    except KuzetError as exc:
        raise _fail(exc) from None
    table = Table("id", "name", "templates", "enrolled")
    for p in rows:
        table.add_row(str(p.identity.person_id), p.identity.name, str(p.templates), p.created_at)
    console.print(table)


def _events_table(events: list[Event], title: str) -> Table:
    table = Table("id", "camera", "identity", "score", "start s", "end s", "track", title=title)
    for e in events:
        table.add_row(
            str(e.event_id),
            e.camera,
            e.identity,
            f"{e.score:.3f}",
            f"{e.start:.2f}",
            f"{e.end:.2f}",
            str(e.track_id),
        )
    return table


def _run_analysis(svc: Kuzet, source: str, camera: str, fps: float | None) -> AnalysisResult:
    with Progress(
        TextColumn("[bold]analysing[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(source, total=None)

        def on_start(total: int | None) -> None:
            progress.update(task, total=total)

        result = svc.analyze(
            source, camera=camera, fps=fps, on_start=on_start, on_frame=lambda _f: progress.advance(task)
        )
        progress.update(task, total=result.stats.frames, completed=result.stats.frames)
    return result


def _print_summary(result: AnalysisResult) -> None:
    s = result.stats
    table = Table(
        "frames",
        "faces",
        "tracks",
        "matched",
        "unknown",
        "of which too poor",
        "dropped (noise)",
        "fps",
        title="summary",
    )
    fps = s.frames / result.seconds if result.seconds > 0 else 0.0
    table.add_row(
        str(s.frames),
        str(s.faces),
        str(s.tracks),
        str(s.matched_tracks),
        str(s.unknown_tracks),
        str(s.low_quality_tracks),
        str(s.dropped_tracks),
        f"{fps:.1f}",
    )
    console.print(table)
    console.print(_events_table(result.events, f"match events ({len(result.events)})"))
    if s.unknown_tracks:
        console.print(f"{s.unknown_tracks} face track(s) matched nobody: counted, not stored.")


@app.command()
def analyze(
    source: Annotated[str, typer.Argument(help="Video file, image, folder of images, or rtsp:// / http:// URL.")],
    camera: Annotated[str, typer.Option("--camera", help="Camera name recorded on the events.")] = "default",
    fps: Annotated[float | None, typer.Option("--fps", help="Analyse this many frames per second.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the events as JSON to this file.")] = None,
) -> None:
    """Find enrolled people in a video, image or stream and store one match event per track."""
    try:
        svc = _service()
        if not svc.people():
            err_console.print("note: nobody is enrolled yet, so every face will be 'unknown' (kuzet enroll).")
        result = _run_analysis(svc, source, camera, fps)
    except KuzetError as exc:
        raise _fail(exc) from None
    _print_summary(result)
    if json_out is not None:
        _write_json(json_out, [svc.event_dict(e) for e in result.events])


def _write_json(path: Path, data: object) -> None:
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _fail(InputError(f"cannot write {path}: {exc.strerror}", hint="check the folder exists")) from None


@app.command()
def events(
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera.")] = None,
    identity: Annotated[str | None, typer.Option("--identity", help="Only this person.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many, newest first.")] = 100,
) -> None:
    """List stored match events, newest first."""
    try:
        svc = _service()
        rows = svc.events(camera=camera, identity=identity, limit=limit)
    except KuzetError as exc:
        raise _fail(exc) from None
    if json_flag:
        sys.stdout.write(json.dumps([svc.event_dict(e) for e in rows], indent=2) + "\n")
    else:
        console.print(_events_table(rows, f"events ({len(rows)})"))


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep earlier demo data instead of starting afresh.")] = False,
) -> None:
    """Enrol a person and analyse a generated scene, using only images shipped with installed packages."""
    from kuzet.demo import DEMO_PERSON, build_scene

    root = resolve_data_dir(state.data_dir) / "demo"
    if root.exists() and not keep:
        shutil.rmtree(root)
    try:
        photo, clip = build_scene(root / "scene")
        svc = Kuzet(root, load_config(state.config))
        console.print(f"[bold]1.[/] enrolling {DEMO_PERSON} from {photo}")
        svc.enroll(DEMO_PERSON, [photo])
        console.print(f"[bold]2.[/] analysing {clip} (the astronaut walks past; the cameraman is a stranger)")
        result = _run_analysis(svc, str(clip), "demo-cam", None)
    except KuzetError as exc:
        raise _fail(exc) from None
    console.print("[bold]3.[/] results")
    _print_summary(result)
    console.print(f"demo data: {root}")


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


def main() -> None:
    """Console-script entry point."""
    app()

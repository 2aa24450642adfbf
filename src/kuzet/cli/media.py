"""Media: `kuzet redact`, `kuzet media export`, `kuzet recordings`, `kuzet access grant`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kuzet.cli.common import MAX_ID, check_output, console, err_console, given_config, session, writable
from kuzet.config.models import KuzetConfig
from kuzet.core.errors import InputError

media_app = typer.Typer(help="Export stored media (redacted by default).", no_args_is_help=True)
access_app = typer.Typer(help="Time-limited access to unredacted media.", no_args_is_help=True)
recordings_app = typer.Typer(help="Recordings of live cameras (encrypted; exports audited).", no_args_is_help=True)
Justification = Annotated[str, typer.Option("--justification", help="Why (required, audited).")]
IMAGE_OUTPUTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_OUTPUTS = (".mp4", ".m4v", ".mov", ".mkv")
"""What `kuzet redact` writes: Pillow's image formats, and the containers that carry its H.264."""


def _redact_image(source: Path, out: Path, cfg: KuzetConfig, method: str) -> None:
    from kuzet.governance.redaction import production_redactor
    from kuzet.ingest.images import load_image
    from kuzet.store.media import encode_jpeg

    redactor = production_redactor(cfg.redaction, method=method)
    result = redactor.redact_image(load_image(source, max_pixels=cfg.ingest.max_pixels))
    if out.suffix.lower() in (".jpg", ".jpeg"):
        out.write_bytes(encode_jpeg(result.image))
    else:
        from PIL import Image

        Image.fromarray(result.image).save(out)
    console.print(f"{out}: {result.faces} face(s) and {result.plates} plate(s) hidden", highlight=False)


def _redact_video(source: Path, out: Path, cfg: KuzetConfig, method: str) -> None:
    from kuzet.governance.redaction import production_redactor, redact_video

    # Faces searched every `redaction.video_every` frames, boxes carried (and held) in between.
    redactor = production_redactor(cfg.redaction, video=True, method=method)
    columns = (TextColumn("[bold]redacting[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
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
    console.print(
        f"{out}: {stats.frames} frames ({stats.width}x{stats.height}) in {stats.seconds:.1f} s = "
        f"{stats.fps:.1f} frames/s, {stats.realtime_factor:.2f}x real time",
        highlight=False,
    )


def redact(
    source: Annotated[Path, typer.Argument(help="Image or video to redact.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the redacted copy.")],
    method: Annotated[str, typer.Option("--method", help="pixelate or blur.")] = "pixelate",
) -> None:
    """Hide every face and licence plate in an image or video (no sign-in needed: nothing is stored)."""
    from kuzet.ingest.images import is_still_image

    if method not in ("pixelate", "blur"):
        raise InputError(f"--method {method!r} is unknown", hint="use pixelate or blur")
    cfg = given_config()
    if not source.is_file():
        raise InputError(f"{source} does not exist or is not a file", hint="give an image or video file")
    still = is_still_image(source)
    kind = "a redacted image" if still else "a redacted video"
    check_output(out, suffixes=IMAGE_OUTPUTS if still else VIDEO_OUTPUTS, source=source, what=kind)
    if still:
        _redact_image(source, out, cfg, method)
    else:
        _redact_video(source, out, cfg, method)


@media_app.command("export")
def media_export(
    kind: Annotated[str, typer.Argument(help="event, alert or watchlist (an entry's enrolled photo).")],
    object_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Its id.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to write the JPEG file(s) to.")],
    unredacted: Annotated[bool, typer.Option("--unredacted", help="The original, unredacted media.")] = False,
    justification: Annotated[str, typer.Option("--justification", help="Why (required for --unredacted).")] = "",
) -> None:
    """Export an event's snapshot or an alert's best shots (audited)."""
    services, actor = session()
    files = services.media.export(actor, kind, object_id, unredacted=unredacted, justification=justification)
    out.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(files):
        name = out / f"{kind}-{object_id}-{i + 1}{'-unredacted' if unredacted else ''}.jpg"
        name.write_bytes(data)
        console.print(str(name), highlight=False)


@recordings_app.command("list")
def recordings_list(
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera's recordings.")] = None,
) -> None:
    """Kept recording segments of live cameras, newest first (audited)."""
    services, actor = session()
    found = services.media.recordings(actor, camera=camera)
    table = Table(title=f"{len(found)} recording segment(s)")
    for col in ("camera", "written (UTC)", "MB", "path"):
        table.add_column(col)
    for r in found:
        table.add_row(r.camera, r.written_at.strftime("%Y-%m-%d %H:%M:%S"), f"{r.bytes / 1e6:.1f}", r.path)
    console.print(table)


@recordings_app.command("export")
def recordings_export(
    path: Annotated[str, typer.Argument(help="A path from `kuzet recordings list`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="MP4 file to write.", callback=writable((".mp4",)))],
    justification: Justification = "",
    unredacted: Annotated[
        bool, typer.Option("--unredacted", help="The camera's original video (reviewer/auditor or a grant).")
    ] = False,
) -> None:
    """Export a recording segment: faces and plates hidden unless --unredacted (audited either way)."""
    services, actor = session()
    services.media.export_recording(actor, path, out, unredacted=unredacted, justification=justification)
    console.print(str(out), highlight=False)


@access_app.command("grant")
def access_grant(
    name: Annotated[str, typer.Argument(help="User to grant unredacted access to.")],
    hours: Annotated[float, typer.Option("--hours", help="How long the grant lasts (at most 72).")],
    justification: Justification,
) -> None:
    """Let a user see unredacted media for a limited time (admins)."""
    services, actor = session()
    until = services.media.grant(actor, name, hours=hours, justification=justification)
    console.print(f"{name} may see unredacted media until {until.isoformat(timespec='minutes')}", highlight=False)

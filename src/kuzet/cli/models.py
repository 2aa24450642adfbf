"""`kuzet models`: models built locally from the installed ones (int8 copies)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from kuzet.cli.common import console, err_console
from kuzet.core.errors import InputError

models_app = typer.Typer(help="Models built locally from the installed ones.", no_args_is_help=True)


@models_app.command("quantize")
def models_quantize(
    photos: Annotated[
        Path | None,
        typer.Option("--photos", help="Folder of face photos to calibrate on (recursive); default $KUZET_DATA/faces."),
    ] = None,
    model: Annotated[
        Literal["all", "descriptor", "centerface"], typer.Option("--model", help="Which model to build.")
    ] = "all",
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build again even if a cached build matches.")] = False,
) -> None:
    """Build the int8 face descriptor and CenterFace ahead of time, and show how close each is to fp32."""
    from kuzet.core.quantize import Int8Build, default_photo_folder, int16_saturates
    from kuzet.detect.face.centerface import centerface_int8
    from kuzet.recognize.fast_resnet import descriptor_int8

    folder = photos or default_photo_folder()
    if folder is None:
        where = os.environ.get("KUZET_DATA", "")
        raise InputError(
            "no calibration photos: --photos was not given" + (f" and {where}/faces does not exist" if where else ""),
            hint="pass --photos DIR with photos of faces like your cameras' (e.g. ../shared/data/faces)",
        )
    builds: list[tuple[str, Int8Build]] = []
    if model in ("all", "descriptor"):
        err_console.print("face descriptor: calibrating on aligned face chips...", style="dim")
        build = descriptor_int8(photos=folder, rebuild=rebuild)
        assert build is not None
        builds.append(("face descriptor (dlib ResNet)", build))
    if model in ("all", "centerface"):
        err_console.print("CenterFace: calibrating on preprocessed photos...", style="dim")
        builds.append(("CenterFace", centerface_int8(photos=folder, rebuild=rebuild)))
    table = Table("model", "file", "state", "calibration", "check against fp32", title="int8 models")
    for name, b in builds:
        calib = b.info.get("calibration", {})
        checks = b.info.get("checks", {})
        table.add_row(
            name,
            str(b.path),
            f"built in {b.info.get('build_s', '?')} s" if b.built_now else f"cached ({b.info.get('built', '?')})",
            f"{calib.get('photos', '?')} photos in {calib.get('folder', '?')}",
            ", ".join(f"{k} {v}" for k, v in checks.items()),
        )
    console.print(table)
    if int16_saturates():
        console.print(
            "This CPU is x86 without VNNI: int8 kernels add in 16 bits here, so the builds take 7-bit weights, and"
            " `precision: auto` runs the descriptor in fp32 (int8 lost a pair in `kuzet eval pairs` on such a CPU);"
            " `precision: int8` uses the build. See docs/config.md.",
            highlight=False,
        )

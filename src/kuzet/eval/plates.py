"""Plate reading evaluation: `kuzet eval plates --labels CSV --root DIR`."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuzet.analytics.plates import FORMATS, char_errors, clean, known_region, plate_formats
from kuzet.core.errors import InputError
from kuzet.detect.plate.reader import PlateReader
from kuzet.ingest import load_image

LABEL_COLUMNS = ("file", "region", "x", "y", "w", "h", "plate")


@dataclass(frozen=True)
class PlateLabel:
    """One labelled image: the plate's box (pixels, top-left and size) and text."""

    file: str
    region: str
    box: tuple[float, float, float, float]
    plate: str


def read_labels(path: Path) -> list[PlateLabel]:
    """Rows of `file,region,x,y,w,h,plate`; a bad row is an error naming its line."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(
                    f"{path}: missing columns {', '.join(missing)}", hint="columns: file,region,x,y,w,h,plate"
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    box = (float(row["x"]), float(row["y"]), float(row["w"]), float(row["h"]))
                except ValueError:
                    raise InputError(f"{path}:{line}: x, y, w, h must be numbers") from None
                if not row["file"] or not clean(row["plate"]):
                    raise InputError(f"{path}:{line}: file and plate must not be empty")
                rows.append(PlateLabel(row["file"], row["region"].strip().lower(), box, clean(row["plate"])))
    except OSError as exc:
        raise InputError(f"cannot read labels {path}: {exc.strerror}") from None
    if not rows:
        raise InputError(f"{path} has no rows")
    return rows


def run_plates(
    labels: Path,
    root: Path,
    *,
    formats: list[str] | None = None,
    reader: PlateReader | None = None,
    progress: Callable[[int, int], None] = lambda _i, _n: None,
) -> dict[str, Any]:
    """Read every labelled image; JSON-ready figures overall and per region, and each image's read.

    Each image is read with the plate formats of its labelled region (a camera's config names the regions it
    sees), or with `formats` when given; a region kuzet has no format for is read with every format.
    """
    rows = read_labels(labels)
    if not root.is_dir():
        raise InputError(f"--root {root} is not a folder", hint="give the folder the label paths are relative to")
    missing = [r.file for r in rows if not (root / r.file).is_file()]
    if missing:
        raise InputError(f"{len(missing)} labelled images are missing under {root}, e.g. {missing[0]}")
    forced = plate_formats(formats) if formats else None
    reader = reader or PlateReader()
    images: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i, row in enumerate(rows):
        region_formats = forced or plate_formats([row.region] if known_region(row.region) else sorted(FORMATS))
        found = reader.read(load_image(root / row.file, max_pixels=10**8), region_formats)
        text = found.plate.text if found else ""
        x, y, w, h = row.box
        detected = False
        if found is not None:
            cx, cy = float(found.box[0] + found.box[2]) / 2, float(found.box[1] + found.box[3]) / 2
            detected = x <= cx <= x + w and y <= cy <= y + h
        images.append(
            {
                "file": row.file,
                "region": row.region,
                "label": row.plate,
                "read": text,
                "exact": text == row.plate,
                "detected": detected,
                "char_errors": char_errors(text, row.plate),
            }
        )
        progress(i + 1, len(rows))
    seconds = time.perf_counter() - start
    report = _figures(images)
    report["ms_per_image"] = round(1000 * seconds / len(rows), 1)
    report["per_region"] = {
        region: _figures([im for im in images if im["region"] == region])
        for region in sorted({im["region"] for im in images})
    }
    report["images"] = images
    return report


def _figures(images: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(images)
    chars = sum(len(im["label"]) for im in images)
    return {
        "n": n,
        "detected": round(sum(im["detected"] for im in images) / n, 4),
        "exact": round(sum(im["exact"] for im in images) / n, 4),
        "cer": round(sum(im["char_errors"] for im in images) / max(1, chars), 4),
    }

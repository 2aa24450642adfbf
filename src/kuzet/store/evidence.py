"""Evidence packages for traffic violations: what a court needs, redacted, hashed, and recorded in the ledger.

A package is a folder under `media/evidence/`: the scene frames (every face and every other vehicle's plate
pixelated, the offending vehicle outlined), the plate crop, and `manifest.json` with the camera, times, rule,
measurements and their uncertainty, the camera's calibration, and the sha256 of every file. The package's hash is
the sha256 of the manifest; it is written to the audit ledger, so any later change to a file or to the manifest
shows.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2

from kuzet.analytics.traffic import Violation
from kuzet.config.models import Calibration
from kuzet.core.errors import StoreError
from kuzet.governance.redaction import Redactor
from kuzet.store.files import private_dir, write_private
from kuzet.store.media import encode_jpeg


def write_evidence(
    violation: Violation,
    *,
    media_root: Path,
    camera: str,
    source: str,
    recorded_at: datetime,
    calibration: Calibration | None,
    redactor: Redactor,
) -> tuple[str, str, list[str]]:
    """Write one package; returns (folder relative to the media root, package sha256, files relative to the root)."""
    rel_dir = Path("evidence") / f"{recorded_at:%Y/%m/%d}" / uuid.uuid4().hex
    folder = private_dir(media_root / rel_dir)
    files: list[dict[str, Any]] = []
    written: list[str] = []

    def put(name: str, data: bytes, what: str, **extra: Any) -> None:
        write_private(folder / name, data)
        files.append({"name": name, "what": what, "sha256": hashlib.sha256(data).hexdigest()} | extra)
        written.append((rel_dir / name).as_posix())

    try:
        for i, (pts, image, box) in enumerate(violation.frames, start=1):
            red = redactor.redact_image(image, keep_plates_in=box).image
            x1, y1, x2, y2 = (int(v) for v in box.tolist())
            cv2.rectangle(red, (x1, y1), (x2, y2), (255, 200, 0), 2)
            size = [int(image.shape[1]), int(image.shape[0])]
            what = f"scene at {pts:.2f} s, vehicle outlined"
            put(f"frame_{i}.jpg", encode_jpeg(red, quality=92), what, width=size[0], height=size[1])
        if violation.plate_crop is not None:
            put("plate.jpg", encode_jpeg(violation.plate_crop, quality=95), "plate crop")
        manifest = {
            "kind": violation.kind,
            "place": violation.where,
            "camera": camera,
            "source": source,
            "stream_time_s": round(violation.pts, 3),
            "recorded_at": recorded_at.isoformat(),
            "track_id": violation.track_id,
            "plate": violation.plate,
            "measurements": violation.measurements,
            "calibration": None if calibration is None else calibration.model_dump(mode="json"),
            "analysed_size": None if violation.analysed_size is None else list(violation.analysed_size),
            "pixels": "calibration points and measurements are in the analysed frame's pixels (analysed_size); a "
            "scene frame of another size was cut from the camera's main stream at the same moment",
            "redaction": "every face and every other vehicle's plate pixelated",
            "files": files,
        }
        data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        put("manifest.json", data, "this manifest")
    except OSError as exc:
        for rel in written:
            (media_root / rel).unlink(missing_ok=True)
        raise StoreError(f"could not write the evidence package: {exc.strerror}") from exc
    return rel_dir.as_posix(), hashlib.sha256(data).hexdigest(), written


def verify_evidence(media_root: Path, rel_dir: str, expected_sha256: str) -> list[str]:
    """Problems with a stored package (empty when the manifest and every file match their hashes)."""
    folder = media_root / rel_dir
    try:
        data = (folder / "manifest.json").read_bytes()
    except OSError:
        return ["manifest.json is missing"]
    problems = []
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        problems.append("manifest.json does not match the hash recorded in the ledger")
    for entry in json.loads(data)["files"]:
        path = folder / entry["name"]
        if not path.is_file():
            problems.append(f"{entry['name']} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['name']} was changed")
    return problems

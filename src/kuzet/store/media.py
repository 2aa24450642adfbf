"""The local media folder: snapshots written atomically under the data directory."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from kuzet.core.errors import StoreError
from kuzet.core.types import Image


class MediaStore:
    """Files under one root; paths handed out are relative to it, so the data directory can move."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save_jpeg(self, image: Image, *, kind: str = "snapshots", quality: int = 90) -> str:
        """Write an RGB image as JPEG; returns its path relative to the root."""
        now = datetime.now(UTC)
        rel = Path(kind) / f"{now:%Y/%m/%d}" / f"{uuid.uuid4().hex}.jpg"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise StoreError(f"could not encode a {image.shape} image as JPEG")
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(np.asarray(buf).tobytes())
        os.replace(tmp, path)
        return rel.as_posix()

    def path(self, rel: str) -> Path:
        """Absolute path of a stored file; refuses paths that escape the root."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"media path {rel!r} is outside the media folder")
        return path

    def delete(self, rel: str) -> None:
        """Remove a stored file if it exists."""
        self.path(rel).unlink(missing_ok=True)

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
from kuzet.store.crypto import DataCipher


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
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(encode_jpeg(image, quality=quality))
        os.replace(tmp, path)
        return rel.as_posix()

    def save_encrypted(self, data: bytes, *, cipher: DataCipher, kind: str = "originals", suffix: str = ".jpg") -> str:
        """Write `data` encrypted (AES-GCM, bound to its path); returns its path relative to the root."""
        now = datetime.now(UTC)
        rel = (Path(kind) / f"{now:%Y/%m/%d}" / f"{uuid.uuid4().hex}{suffix}.enc").as_posix()
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(cipher.encrypt(data, context=f"media:{rel}"))
        os.replace(tmp, path)
        return rel

    def read_encrypted(self, rel: str, *, cipher: DataCipher) -> bytes:
        """Decrypt a file written by `save_encrypted`."""
        path = self.path(rel)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"media file {rel} is missing", hint="it may have been purged by retention") from None
        return cipher.decrypt(blob, context=f"media:{rel}")

    def reencrypt(self, rel: str, *, old: DataCipher, new: DataCipher) -> None:
        """Re-encrypt one file with `new`'s active key, atomically."""
        data = self.read_encrypted(rel, cipher=old)
        path = self.path(rel)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(new.encrypt(data, context=f"media:{rel}"))
        os.replace(tmp, path)

    def encrypted_files(self) -> list[str]:
        """Every encrypted file, as paths relative to the root."""
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*.enc"))

    def total_bytes(self) -> int:
        """Size of everything in the media folder."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def path(self, rel: str) -> Path:
        """Absolute path of a stored file; refuses paths that escape the root."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"media path {rel!r} is outside the media folder")
        return path

    def delete(self, rel: str) -> None:
        """Remove a stored file if it exists."""
        self.path(rel).unlink(missing_ok=True)


def encode_jpeg(image: Image, *, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB image."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StoreError(f"could not encode a {image.shape} image as JPEG")
    return bytes(np.asarray(buf).tobytes())

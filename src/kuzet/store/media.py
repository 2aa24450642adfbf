"""The local media folder: snapshots written atomically under the data directory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from kuzet.core.errors import StoreError
from kuzet.core.types import Image
from kuzet.store.crypto import DataCipher, blob_key_id
from kuzet.store.files import private_dir, write_private


class MediaStore:
    """Files under one root; paths handed out are relative to it, so the data directory can move."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save_jpeg(self, image: Image, *, kind: str = "snapshots", quality: int = 90) -> str:
        """Write an RGB image as JPEG; returns its path relative to the root."""
        now = datetime.now(UTC)
        rel = Path(kind) / f"{now:%Y/%m/%d}" / f"{uuid.uuid4().hex}.jpg"
        path = self.root / rel
        private_dir(path.parent)
        write_private(path, encode_jpeg(image, quality=quality))
        return rel.as_posix()

    def save_encrypted(
        self,
        data: bytes,
        *,
        cipher: DataCipher,
        kind: str = "originals",
        suffix: str = ".jpg",
        at: datetime | None = None,
    ) -> str:
        """Write `data` encrypted (AES-GCM, bound to its path); returns its path relative to the root.

        `at` (what the file shows happened then) files it under that day, named so that names sort by time.
        """
        now = at or datetime.now(UTC)
        stem = f"{now:%H%M%S}-{uuid.uuid4().hex[:16]}" if at is not None else uuid.uuid4().hex
        rel = (Path(kind) / f"{now:%Y/%m/%d}" / f"{stem}{suffix}.enc").as_posix()
        path = self.root / rel
        private_dir(path.parent)
        write_private(path, cipher.encrypt(data, context=f"media:{rel}"))
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
        write_private(self.path(rel), new.encrypt(data, context=f"media:{rel}"))

    def key_id(self, rel: str) -> str:
        """The id of the data key a file written by `save_encrypted` is encrypted with."""
        with self.path(rel).open("rb") as f:
            return blob_key_id(f.read(64))

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


def decode_jpeg(data: bytes) -> Image:
    """RGB pixels of JPEG bytes (as `encode_jpeg` writes them).

    Raises:
        StoreError: The bytes are not an image.
    """
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise StoreError("a stored photo could not be decoded", hint="it may be damaged; see `kuzet audit verify`")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

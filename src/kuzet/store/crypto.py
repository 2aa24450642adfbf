"""Encryption at rest: AES-256-GCM with keys kept outside the database.

Ciphertexts are `b"KZ1" || key id (8 bytes) || nonce (12 bytes) || AES-GCM(ciphertext || tag)`, with the
record's purpose as associated data, so a blob cannot be moved to another record. The key ring is the file
`DATA_DIR/keys/data-keys.json` (owner-only), or the environment variable `KUZET_DATA_KEY` (base64 of 32 bytes),
which then is the only key.

The ring is live: every process checks the file before it encrypts (a stat call) and when it meets a key id it does
not know, so a rotation made by `kuzet keys rotate` reaches a running `kuzet serve` or `kuzet run` at once. A rotated
key stays in the ring, retired (decrypt-only), until the re-encryption pass has moved every record off it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kuzet.core.errors import StoreError
from kuzet.store.files import private_dir, write_private

MAGIC = b"KZ1"
ENV_KEY = "KUZET_DATA_KEY"
KEYRING_NAME = "data-keys.json"


def is_encrypted(blob: bytes) -> bool:
    """Whether `blob` is a kuzet ciphertext."""
    return blob[:3] == MAGIC and len(blob) >= 3 + 8 + 12 + 16


def blob_key_id(blob: bytes) -> str:
    """The id of the key a ciphertext was made with ("" when it is not one)."""
    return blob[3:11].hex() if is_encrypted(blob) else ""


class DataCipher:
    """Encrypts with the active key; decrypts with any key in the ring (active or retired)."""

    def __init__(
        self,
        keys: dict[str, bytes],
        active: str,
        *,
        source: str,
        retired: dict[str, str] | None = None,
        path: Path | None = None,
    ) -> None:
        if active not in keys:
            raise StoreError(
                f"the active data key {active} is not in {source}", hint="restore the key ring from backup"
            )
        self.keys = keys
        self.active = active
        self.source = source
        self.retired = dict(retired or {})
        """Key id -> when it was retired (ISO time): decrypt-only keys waiting for re-encryption to finish."""
        self.path = path
        self._stamp = _stamp(path) if path is not None else None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, keys_dir: Path, *, create: bool = True) -> DataCipher:
        """The key ring from `KUZET_DATA_KEY` or `keys_dir`, created there on first use when `create`."""
        env = os.environ.get(ENV_KEY, "").strip()
        if env:
            try:
                key = base64.b64decode(env, validate=True)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise StoreError(f"{ENV_KEY} is not base64 of 32 bytes", hint="generate one with `kuzet keys generate`")
            return cls({key_id(key): key}, key_id(key), source=ENV_KEY)
        path = keys_dir / KEYRING_NAME
        if not path.exists():
            if not create:
                raise StoreError(
                    f"no data key: {path} is missing and {ENV_KEY} is not set",
                    hint=f"restore {path} from backup or set {ENV_KEY}; without the key, templates cannot be read",
                )
            key = secrets.token_bytes(32)
            ring = cls({key_id(key): key}, key_id(key), source=str(path), path=path)
            ring.save(keys_dir)
            return ring
        keys, active, retired = _read_ring(path)
        return cls(keys, active, source=str(path), retired=retired, path=path)

    def save(self, keys_dir: Path) -> None:
        """Write the key ring (owner-only), atomically."""
        private_dir(keys_dir)
        path = keys_dir / KEYRING_NAME
        body = {
            "active": self.active,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "retired": self.retired,
        }
        write_private(path, json.dumps(body).encode(), sync=True)
        self.path = path
        self._stamp = _stamp(path)

    def refresh(self) -> bool:
        """Re-read the ring file if another process changed it; True when it did."""
        if self.path is None:
            return False
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        with self._lock:
            if stamp != self._stamp:
                self.keys, self.active, self.retired = _read_ring(self.path)
                self._stamp = stamp
        return True

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt with the active key (the newest), binding `context` (what the record is) as associated data."""
        self.refresh()
        nonce = secrets.token_bytes(12)
        kid = self.active
        ct = AESGCM(self.keys[kid]).encrypt(nonce, plaintext, context.encode())
        return MAGIC + bytes.fromhex(kid) + nonce + ct

    def decrypt(self, blob: bytes, *, context: str) -> bytes:
        """Decrypt a ciphertext made by `encrypt` with the same context."""
        if not is_encrypted(blob):
            raise StoreError(f"{context} is not encrypted data", hint="the record is damaged")
        kid, nonce, ct = blob[3:11].hex(), blob[11:23], blob[23:]
        key = self.keys.get(kid)
        if key is None and self.refresh():
            key = self.keys.get(kid)
        if key is None:
            raise StoreError(
                f"{context} was encrypted with data key {kid}, which is not in {self.source}",
                hint=f"restore the key ring from backup or set {ENV_KEY} to that key",
            )
        try:
            return AESGCM(key).decrypt(nonce, ct, context.encode())
        except InvalidTag:
            raise StoreError(
                f"{context} cannot be decrypted: the data key is wrong or the record was altered",
                hint=f"check {ENV_KEY} / the key ring; restore the record from backup",
            ) from None

    def rotated(self) -> DataCipher:
        """A ring with a new active key; every older key is kept, retired (decrypt-only)."""
        self.refresh()
        key = secrets.token_bytes(32)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        retired = {**self.retired, **{k: now for k in self.keys if k not in self.retired}}
        return DataCipher(
            {**self.keys, key_id(key): key}, key_id(key), source=self.source, retired=retired, path=self.path
        )

    def without(self, key_ids: set[str]) -> DataCipher:
        """The same ring with retired keys `key_ids` removed (the active key is never removed)."""
        keys = {k: v for k, v in self.keys.items() if k not in key_ids or k == self.active}
        retired = {k: v for k, v in self.retired.items() if k in keys}
        return DataCipher(keys, self.active, source=self.source, retired=retired, path=self.path)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_ring(path: Path) -> tuple[dict[str, bytes], str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = {k: base64.b64decode(v) for k, v in data["keys"].items()}
        retired = {str(k): str(v) for k, v in data.get("retired", {}).items()}
        return keys, str(data["active"]), retired
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"the data key ring {path} is unreadable ({exc})", hint="restore it from backup") from None


def key_id(key: bytes) -> str:
    """A key's public id: 8 bytes of a hash of it, as hex."""
    return hashlib.sha256(b"kuzet-data-key" + key).hexdigest()[:16]

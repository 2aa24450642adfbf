"""Encryption at rest: AES-256-GCM with keys kept outside the database.

Ciphertexts are `b"KZ1" || key id (8 bytes) || nonce (12 bytes) || AES-GCM(ciphertext || tag)`, with the
record's purpose as associated data, so a blob cannot be moved to another record. The key ring is the file
`DATA_DIR/keys/data-keys.json` (owner-only), or the environment variable `KUZET_DATA_KEY` (base64 of 32 bytes),
which then is the only key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kuzet.core.errors import StoreError

MAGIC = b"KZ1"
ENV_KEY = "KUZET_DATA_KEY"
KEYRING_NAME = "data-keys.json"


def is_encrypted(blob: bytes) -> bool:
    """Whether `blob` is a kuzet ciphertext."""
    return blob[:3] == MAGIC and len(blob) >= 3 + 8 + 12 + 16


class DataCipher:
    """Encrypts and decrypts records with the active key; decrypts with any key in the ring."""

    def __init__(self, keys: dict[str, bytes], active: str, *, source: str) -> None:
        if active not in keys:
            raise StoreError(
                f"the active data key {active} is not in {source}", hint="restore the key ring from backup"
            )
        self.keys = keys
        self.active = active
        self.source = source

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
            ring = cls({key_id(key): key}, key_id(key), source=str(path))
            ring.save(keys_dir)
            return ring
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {k: base64.b64decode(v) for k, v in data["keys"].items()}
            return cls(keys, data["active"], source=str(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the data key ring {path} is unreadable ({exc})", hint="restore it from backup") from None

    def save(self, keys_dir: Path) -> None:
        """Write the key ring (owner-only), atomically."""
        keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(keys_dir, 0o700)
        path = keys_dir / KEYRING_NAME
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        body = {"active": self.active, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()}}
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt with the active key, binding `context` (what the record is) as associated data."""
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
        """A ring with a new active key (old keys kept for decryption until re-encryption completes)."""
        key = secrets.token_bytes(32)
        return DataCipher({**self.keys, key_id(key): key}, key_id(key), source=self.source)


def key_id(key: bytes) -> str:
    """A key's public id: 8 bytes of a hash of it, as hex."""
    import hashlib

    return hashlib.sha256(b"kuzet-data-key" + key).hexdigest()[:16]

"""The Ed25519 key that signs ledger checkpoints, kept as files outside the database.

A checkpoint carries the raw public key it was signed with, so anyone holding a checkpoint can check its signature
without asking the server for a key. A new key takes over only through `kuzet audit rotate-key`, which writes a
statement signed by the old key into the ledger (`audit.key_rotated`); a key that changes without one is reported by
`kuzet audit verify` and by every witness.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kuzet.core.errors import StoreError
from kuzet.store.files import private_dir, tighten, write_private

PRIVATE_NAME = "ledger-ed25519.pem"
PUBLIC_NAME = "ledger-ed25519.pub.pem"
STAGED_SUFFIX = ".new"
"""A rotated key waits under this suffix until the transaction recording the rotation has committed."""


def key_id_of(public_hex: str) -> str:
    """A public key's short id: the first 16 hex digits of SHA-256 of the raw key."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def verify_with(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """Whether `signature_hex` is a valid Ed25519 signature of `message` under the raw public key `public_hex`."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, InvalidSignature):
        return False
    return True


def rotation_statement(old_public_hex: str, new_public_hex: str) -> bytes:
    """What the old key signs when it hands over to a new one."""
    return f"kuzet-ledger-key-rotation/v1\n{old_public_hex}\n{new_public_hex}\n".encode()


class LedgerSigner:
    """Signs and verifies checkpoint statements; the private key file is readable by its owner only."""

    def __init__(self, private: Ed25519PrivateKey | None, public: Ed25519PublicKey) -> None:
        self._private = private
        self.public = public
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()
        self.key_id = key_id_of(self.public_hex)

    @classmethod
    def generate(cls) -> LedgerSigner:
        """A new key pair (not saved)."""
        key = Ed25519PrivateKey.generate()
        return cls(key, key.public_key())

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> LedgerSigner:
        """Load the key pair from `keys_dir`, creating it on first use."""
        private_path = keys_dir / PRIVATE_NAME
        try:
            if not private_path.exists():
                cls.generate().save(keys_dir)
            tighten(private_path)
            return cls._load(private_path)
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"cannot read or create the ledger signing key in {keys_dir}: {exc}",
                hint="restore the keys/ folder of the data directory from backup",
            ) from None

    @classmethod
    def staged(cls, keys_dir: Path) -> LedgerSigner | None:
        """A rotated key that was staged but not yet put in place (a rotation interrupted by a crash), if any."""
        path = keys_dir / (PRIVATE_NAME + STAGED_SUFFIX)
        return cls._load(path) if path.exists() else None

    @classmethod
    def _load(cls, path: Path) -> LedgerSigner:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise StoreError(f"{path} is not an Ed25519 key", hint="restore it from backup")
        return cls(loaded, loaded.public_key())

    @classmethod
    def verifier(cls, public_pem: bytes) -> LedgerSigner:
        """A verify-only signer from a public key (what an auditor holds)."""
        key = serialization.load_pem_public_key(public_pem)
        if not isinstance(key, Ed25519PublicKey):
            raise StoreError("the ledger public key is not an Ed25519 key", hint="use ledger-ed25519.pub.pem")
        return cls(None, key)

    def save(self, keys_dir: Path, *, staged: bool = False) -> None:
        """Write the key pair into `keys_dir` (owner-only); `staged` writes it beside the current one."""
        if self._private is None:
            raise StoreError("this key can only verify", hint="save the data directory's private key")
        private_dir(keys_dir)
        suffix = STAGED_SUFFIX if staged else ""
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(keys_dir / (PRIVATE_NAME + suffix), pem, sync=True)
        public = self.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        write_private(keys_dir / (PUBLIC_NAME + suffix), public, sync=True)

    @staticmethod
    def promote_staged(keys_dir: Path) -> None:
        """Put a staged key in place of the current one (after its rotation entry has committed)."""
        for name in (PRIVATE_NAME, PUBLIC_NAME):
            staged = keys_dir / (name + STAGED_SUFFIX)
            if staged.exists():
                os.replace(staged, keys_dir / name)

    @staticmethod
    def discard_staged(keys_dir: Path) -> None:
        """Remove a staged key whose rotation never committed."""
        for name in (PRIVATE_NAME, PUBLIC_NAME):
            (keys_dir / (name + STAGED_SUFFIX)).unlink(missing_ok=True)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of `message`."""
        if self._private is None:
            raise StoreError("this key can only verify", hint="sign with the data directory's private key")
        return self._private.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's signature of `message`."""
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

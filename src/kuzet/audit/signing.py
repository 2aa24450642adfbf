"""The Ed25519 key that signs ledger checkpoints, kept as files outside the database."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kuzet.core.errors import StoreError

PRIVATE_NAME = "ledger-ed25519.pem"
PUBLIC_NAME = "ledger-ed25519.pub.pem"


class LedgerSigner:
    """Signs and verifies checkpoint statements; the private key file is readable by its owner only."""

    def __init__(self, private: Ed25519PrivateKey | None, public: Ed25519PublicKey) -> None:
        self._private = private
        self.public = public
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> LedgerSigner:
        """Load the key pair from `keys_dir`, creating it on first use."""
        private_path, public_path = keys_dir / PRIVATE_NAME, keys_dir / PUBLIC_NAME
        try:
            if not private_path.exists():
                keys_dir.mkdir(parents=True, exist_ok=True)
                os.chmod(keys_dir, 0o700)
                key = Ed25519PrivateKey.generate()
                pem = key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
                public_path.write_bytes(
                    key.public_key().public_bytes(
                        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                )
            loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"cannot read or create the ledger signing key in {keys_dir}: {exc}",
                hint="restore the keys/ folder of the data directory from backup",
            ) from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise StoreError(f"{private_path} is not an Ed25519 key", hint="restore it from backup")
        return cls(loaded, loaded.public_key())

    @classmethod
    def verifier(cls, public_pem: bytes) -> LedgerSigner:
        """A verify-only signer from a public key (what an auditor holds)."""
        key = serialization.load_pem_public_key(public_pem)
        if not isinstance(key, Ed25519PublicKey):
            raise StoreError("the ledger public key is not an Ed25519 key", hint="use ledger-ed25519.pub.pem")
        return cls(None, key)

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

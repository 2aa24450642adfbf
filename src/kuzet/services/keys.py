"""Data key rotation: a new key for everything written from now on, every template and file moved onto it."""

from __future__ import annotations

import contextlib
import logging
import time

from kuzet.audit.ledger import Details
from kuzet.core.errors import KuzetError, StoreError
from kuzet.core.types import User
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.store.crypto import ENV_KEY, DataCipher

log = logging.getLogger("kuzet")


class KeyService:
    """The data key ring (templates and unredacted media)."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def rotate(self, actor: User, *, grace_s: float = 2.0) -> str:
        """Encrypt from now on with a new data key and move every template and file onto it; returns the new key id.

        Safe while `kuzet serve` and `kuzet run` are running: the new ring is written first, with the old keys kept
        decrypt-only, and every process looks at the ring before it encrypts. After `grace_s` seconds (encryptions
        already under way finish), everything is re-encrypted; files written meanwhile under an old key are caught by
        a second scan; only then are old keys that no record uses removed from the ring.
        """
        self.uow.require(actor, "keys.rotate")
        ctx = self.ctx
        old = ctx.cipher
        if old.source == ENV_KEY:
            raise KuzetError(
                "the data key comes from KUZET_DATA_KEY, so kuzet cannot replace it",
                hint="unset it to use the key ring in DATA_DIR/keys, or rotate the key in your secret store",
            )
        keys_dir = ctx.data_dir / "keys"
        ring = old.rotated()
        ring.save(keys_dir)  # from here on every process encrypts with the new key; the old ones still decrypt
        ctx.__dict__["cipher"] = ring
        time.sleep(grace_s)
        with self.uow.tx() as w:
            templates = w.gallery.reencrypt(ring) + w.watchlists.reencrypt(ring) + w.alerts.reencrypt_appearances(ring)
        files = 0
        for _ in range(3):  # a file written under an old key while the previous scan ran is caught by the next
            moved = self._reencrypt_files(ring)
            files += moved
            if not moved:
                break
        in_use = self._keys_in_use()
        final = ring.without({k for k in ring.retired if k not in in_use})
        final.save(keys_dir)
        ctx.__dict__["cipher"] = final
        details: Details = {
            "templates": templates,
            "files": files,
            "retired": ",".join(sorted(set(ring.keys) - set(final.keys))),
            "still_in_use": ",".join(sorted(final.retired)),
        }
        self.uow.record(actor, "keys.rotate", object=f"key:{final.active}", details=details)
        return final.active

    def _reencrypt_files(self, ring: DataCipher) -> int:
        """Re-encrypt every media file not under the active key; returns how many (files purged meanwhile skipped)."""
        media = self.ctx.media
        n = 0
        for rel in media.encrypted_files():
            try:
                if media.key_id(rel) != ring.active:
                    media.reencrypt(rel, old=ring, new=ring)
                    n += 1
            except (FileNotFoundError, StoreError) as exc:
                if media.path(rel).exists():
                    raise
                log.info("%s was deleted during key rotation (%s)", rel, exc)
        return n

    def _keys_in_use(self) -> set[str]:
        """Ids of every data key some template or media file is encrypted with."""
        with self.uow.read() as r:
            used = r.gallery.key_ids() | r.watchlists.key_ids() | r.alerts.appearance_key_ids()
        media = self.ctx.media
        for rel in media.encrypted_files():
            with contextlib.suppress(FileNotFoundError):
                used.add(media.key_id(rel))
        return used - {""}

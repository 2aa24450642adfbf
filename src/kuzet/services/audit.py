"""The ledger for auditors: verification (also against trusted checkpoints), reading, proofs, signing keys."""

from __future__ import annotations

from dataclasses import dataclass

from kuzet.audit import merkle
from kuzet.audit.ledger import AuditEntry, Checkpoint, KeyRotation
from kuzet.audit.signing import LedgerSigner
from kuzet.audit.verify import TrustedCheckpoint, VerifyReport, verify_ledger
from kuzet.core.errors import InputError, NotFoundError
from kuzet.core.types import User
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that one ledger entry is in the tree a signed checkpoint commits to."""

    entry: AuditEntry
    checkpoint: Checkpoint
    path: list[str]
    valid: bool


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that a later checkpoint's tree extends an earlier one's."""

    old: Checkpoint
    new: Checkpoint
    path: list[str]
    valid: bool


class AuditService:
    """Verify, read and prove the ledger; sign checkpoints; hand signing to a new key."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def verify(self, actor: User | None, *, trusted: list[TrustedCheckpoint] | None = None) -> VerifyReport:
        """Verify the whole ledger (and that it extends every `trusted` checkpoint), in a read transaction.

        The check is recorded only when it passes (a broken ledger is left as found).
        """
        if actor is not None:
            self.uow.require(actor, "audit.verify")
        ctx = self.ctx
        with ctx.db.read() as s:
            report = verify_ledger(
                s, ctx.signer, log_file=ctx.checkpoint_log.path, trusted=trusted or [], fresh=ctx.db.read
            )
        if report.ok and actor is not None:
            details = {"entries": report.entries, "ok": True, "trusted_checkpoints": report.trusted}
            self.uow.record(actor, "audit.verify", details=details)
        return report

    def log(self, actor: User, *, start: int = 1, limit: int = 1000, action: str | None = None) -> list[AuditEntry]:
        """Ledger entries, oldest first (reading them is itself an entry)."""
        self.uow.require(actor, "audit.read")
        with self.uow.read() as r:
            rows = r.ledger.entries(start=start, limit=limit, action=action)
        self.uow.record(actor, "audit.view", details={"start": start, "count": len(rows)})
        return rows

    def recent(self, actor: User, *, before: int | None = None, limit: int = 100) -> tuple[list[AuditEntry], int]:
        """The ledger newest first: `limit` entries before entry `before` (None: the newest), and the ledger's size.

        Reading them is itself an entry.
        """
        self.uow.require(actor, "audit.read")
        with self.uow.read() as r:
            size = r.ledger.size()
            end = size + 1 if before is None else max(1, min(before, size + 1))
            start = max(1, end - limit)
            rows = r.ledger.entries(start=start, limit=end - start)
        self.uow.record(actor, "audit.view", details={"start": start, "count": len(rows)})
        return rows[::-1], size

    def checkpoint(self, actor: User) -> Checkpoint:
        """Sign a checkpoint of the ledger as it is now (it covers this request's own entry)."""
        self.uow.require(actor, "audit.sign")
        return self._covering(actor, "audit.checkpoint")

    def latest(self, actor: User) -> Checkpoint:
        """The newest signed checkpoint, after recording that `actor` fetched it (so it covers the fetch)."""
        self.uow.require(actor, "audit.fetch")
        return self._covering(actor, "audit.checkpoint_view")

    def _covering(self, actor: User, action: str) -> Checkpoint:
        self.uow.record(actor, action)
        with self.uow.read() as r:
            cp = r.ledger.latest_checkpoint()
        assert cp is not None
        return cp

    def consistency_sizes(self, actor: User, first: int, second: int) -> list[str]:
        """Consistency proof (hex hashes) from the ledger's first `first` entries to its first `second`."""
        self.uow.require(actor, "audit.consistency_sizes")
        with self.uow.read() as r:
            leaves = r.ledger.leaves(second)
        if not 0 < first <= second or second > len(leaves):
            raise InputError(
                f"no consistency proof from {first} to {second} entries: the ledger holds {len(leaves)}",
                hint="give 1 <= first <= second <= the ledger's size",
            )
        return [h.hex() for h in merkle.consistency_proof(first, leaves)]

    def key_rotations(self, actor: User) -> list[KeyRotation]:
        """Every hand-over of the checkpoint signing key, with the old key's signature."""
        self.uow.require(actor, "audit.rotations")
        with self.uow.read() as r:
            return r.ledger.key_rotations()

    def rotate_key(self, actor: User) -> str:
        """Hand checkpoint signing to a new key: the old key signs the hand-over into the ledger; returns the new id.

        The new key is staged beside the old one, the hand-over and the first checkpoint it signs commit together,
        and only then does the new key replace the old (a crash in between is finished or undone at the next start).
        """
        self.uow.require(actor, "audit.rotate_key")
        keys = self.ctx.data_dir / "keys"
        old, new = self.ctx.signer, LedgerSigner.generate()
        new.save(keys, staged=True)
        try:
            with self.uow.tx(signer=new) as w:
                w.ledger.record_key_rotation(old, new, actor=actor.name, source=self.ctx.origin)
        except BaseException:
            LedgerSigner.discard_staged(keys)
            raise
        LedgerSigner.promote_staged(keys)
        self.ctx.__dict__["signer"] = new
        return new.key_id

    def prove(self, actor: User, seq: int) -> InclusionProof:
        """Inclusion proof of entry `seq` in the newest checkpoint."""
        self.uow.require(actor, "audit.prove")
        with self.uow.read() as r:
            cp = r.ledger.latest_checkpoint()
            if cp is None or seq > cp.tree_size:
                raise NotFoundError(
                    f"entry {seq} is not covered by a checkpoint yet", hint="run `kuzet audit checkpoint` first"
                )
            entries = r.ledger.entries(start=seq, limit=1)
            if seq < 1 or not entries:
                raise NotFoundError(f"ledger entry {seq} does not exist", hint="see `kuzet audit log`")
            leaves = r.ledger.leaves(cp.tree_size)
        path = merkle.inclusion_proof(seq - 1, leaves)
        valid = merkle.verify_inclusion(seq - 1, cp.tree_size, leaves[seq - 1], path, bytes.fromhex(cp.root_hash))
        return InclusionProof(entry=entries[0], checkpoint=cp, path=[p.hex() for p in path], valid=valid)

    def consistency(self, actor: User, old_id: int, new_id: int) -> ConsistencyProof:
        """Consistency proof between two checkpoints: the newer tree extends the older one.

        Not valid (no proof can be) when the ledger holds fewer entries than the newer checkpoint covers.

        Raises:
            NotFoundError: There is no such checkpoint.
            InputError: The "older" checkpoint covers more entries than the "newer" one (given the wrong way round).
        """
        self.uow.require(actor, "audit.consistency")
        with self.uow.read() as r:
            by_id = {c.checkpoint_id: c for c in r.ledger.checkpoints()}
            missing = [i for i in (old_id, new_id) if i not in by_id]
            if missing:
                raise NotFoundError(f"there is no checkpoint {missing[0]}", hint="see `kuzet audit checkpoints`")
            old, new = by_id[old_id], by_id[new_id]
            if old.tree_size > new.tree_size:  # a proof of the swapped pair would answer another question
                raise InputError(
                    f"checkpoint {old_id} ({old.tree_size} entries) is newer than checkpoint {new_id} "
                    f"({new.tree_size} entries): the earlier checkpoint comes first",
                    hint=f"give the earlier one first: `kuzet audit consistency {new_id} {old_id}`",
                )
            leaves = r.ledger.leaves(new.tree_size)
        if len(leaves) < new.tree_size:  # entries the checkpoint covers are gone: the ledger was truncated
            return ConsistencyProof(old=old, new=new, path=[], valid=False)
        path = merkle.consistency_proof(old.tree_size, leaves)
        valid = merkle.verify_consistency(
            old.tree_size, new.tree_size, bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash), path
        )
        return ConsistencyProof(old=old, new=new, path=[p.hex() for p in path], valid=valid)

    def checkpoints(self, actor: User) -> list[Checkpoint]:
        """Every signed checkpoint."""
        self.uow.require(actor, "audit.checkpoints")
        with self.uow.read() as r:
            return r.ledger.checkpoints()

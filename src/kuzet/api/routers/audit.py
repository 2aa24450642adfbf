"""The ledger for auditors: entries, verification, proofs, checkpoints and key hand-overs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from kuzet.api.deps import Actor, Id, Svc

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("/log")
def audit_log(
    svc: Svc,
    actor: Actor,
    start: Annotated[int, Query(ge=1, le=10**12)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    """Ledger entries, oldest first (auditors, admins)."""
    return [asdict(e) for e in svc.audit.log(actor, start=start, limit=limit, action=action)]


@router.post("/verify")
def audit_verify(svc: Svc, actor: Actor) -> dict[str, Any]:
    """Verify the whole ledger."""
    return asdict(svc.audit.verify(actor))


@router.get("/proof/{seq}")
def audit_proof(seq: Id, svc: Svc, actor: Actor) -> dict[str, Any]:
    """Inclusion proof of one entry against the newest checkpoint."""
    proof = svc.audit.prove(actor, seq)
    return {
        "entry": asdict(proof.entry),
        "checkpoint": asdict(proof.checkpoint),
        "audit_path": proof.path,
        "valid": proof.valid,
    }


@router.get("/checkpoints")
def audit_checkpoints(svc: Svc, actor: Actor) -> list[dict[str, Any]]:
    """Signed checkpoints."""
    return [asdict(c) for c in svc.audit.checkpoints(actor)]


@router.get("/checkpoint/latest")
def audit_latest_checkpoint(svc: Svc, actor: Actor) -> dict[str, Any]:
    """The newest signed checkpoint, in the format witnesses hold (auditors); it covers this request's own entry."""
    return svc.audit.latest(actor).signed_json()


@router.get("/consistency")
def audit_consistency_sizes(
    svc: Svc,
    actor: Actor,
    first: Annotated[int, Query(ge=1, le=2**53, description="Entries in the older tree")],
    second: Annotated[int, Query(ge=1, le=2**53, description="Entries in the newer tree")],
) -> dict[str, Any]:
    """RFC 6962 consistency proof that the ledger's first `second` entries extend its first `first` (auditors)."""
    return {"first": first, "second": second, "proof": svc.audit.consistency_sizes(actor, first, second)}


@router.get("/key-rotations")
def audit_key_rotations(svc: Svc, actor: Actor) -> list[dict[str, Any]]:
    """Every hand-over of the checkpoint signing key, signed by the old key (auditors, admins)."""
    return [r.to_json() for r in svc.audit.key_rotations(actor)]


@router.post("/checkpoint", status_code=201)
def audit_checkpoint(svc: Svc, actor: Actor) -> dict[str, Any]:
    """Sign a checkpoint now."""
    return asdict(svc.audit.checkpoint(actor))

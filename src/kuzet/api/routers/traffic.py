"""Traffic passages and violations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam

from kuzet.api.deps import Actor, Id, Svc
from kuzet.api.routers.pages import page
from kuzet.api.schemas import JustificationBody

router = APIRouter(prefix="/api/traffic", tags=["traffic"])


@router.get("/counts")
def traffic_counts(
    svc: Svc, actor: Actor, camera: Annotated[str | None, Query(max_length=64)] = None
) -> list[dict[str, object]]:
    """Passages per camera, counting line, direction and kind of object, with the mean speed (no plates)."""
    return svc.records.traffic_counts(actor, camera=camera)


@router.get("/series")
def traffic_series(
    svc: Svc,
    actor: Actor,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    hours: Annotated[int, Query(ge=1, le=744)] = 24,
    bucket_s: Annotated[int, Query(ge=60, le=86_400)] = 3600,
) -> dict[str, object]:
    """Passages per line and direction in time buckets (`t`: bucket starts, Unix seconds), for charts."""
    return svc.records.traffic_series(actor, camera=camera, hours=hours, bucket_s=bucket_s)


@router.post(
    "/violations/{violation_id}/evidence",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def violation_evidence(violation_id: Id, body: JustificationBody, svc: Svc, actor: Actor) -> Response:
    """A violation's evidence package as a ZIP, for a written justification (checked against its hashes; audited).

    The ZIP holds the frames, the plate crop and the manifest: measurements with uncertainty, calibration, hashes.
    """
    name, data = svc.records.evidence_package(actor, violation_id, justification=body.justification)
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/{kind}")
def list_traffic(
    kind: Annotated[str, PathParam(pattern="^(passages|violations)$")],
    svc: Svc,
    actor: Actor,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    plate: Annotated[str | None, Query(max_length=16)] = None,
    fuzzy: Annotated[bool, Query()] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Traffic passages or violations (with evidence hashes), newest first (viewing is audited).

    `fuzzy=true` also finds plates read with O/0, I/1, S/5, B/8 or Z/2 mixed up, or one character off.
    """
    items = svc.records.traffic(actor, kind, camera=camera, plate=plate, fuzzy=fuzzy, limit=limit, offset=offset)
    return page(items, limit, offset)

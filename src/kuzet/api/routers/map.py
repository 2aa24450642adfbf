"""The map of cameras: their positions, states and open alerts, over a GeoJSON city map or a site plan."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from fastapi import Path as PathParam

from kuzet.api.deps import Actor, Svc

router = APIRouter(prefix="/api/map", tags=["map"])


@router.get("")
def camera_map(svc: Svc, actor: Actor) -> dict[str, object]:
    """What the map is drawn on (`geojson`, `plan` or `none`) and the cameras placed on it.

    Each comes with its state, counts and alerts waiting for review; cameras without a position of the map's kind
    are listed as `unplaced`.
    """
    return svc.cameras.map(actor)


@router.get(
    "/{kind}",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}, "image/png": {}, "image/jpeg": {}}}},
)
def map_base(kind: Annotated[str, PathParam(pattern="^(geojson|plan)$")], svc: Svc, actor: Actor) -> Response:
    """The GeoJSON city map or the site plan image the config names (served by kuzet: no tiles from outside)."""
    data, media = svc.cameras.map_file(actor, kind)
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300"})

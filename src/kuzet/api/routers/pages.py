"""Paginated lists."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic_core import to_json


def page(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """One page of a paginated list: `next_offset` is None on the last page."""
    return {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(items) if len(items) == limit else None,
    }


def json_page(items: list[dict[str, Any]], limit: int, offset: int) -> Response:
    """`page` as a finished JSON answer (for a route whose work, answer included, may run in the thread pool).

    The JSON is what FastAPI makes of the same page for a route declared `-> dict[str, Any]` (pydantic's encoder),
    so the route can keep that declaration (`response_model`) for its OpenAPI document.
    """
    body = to_json(page(items, limit, offset), inf_nan_mode="null")  # as FastAPI: NaN and infinities are null
    return Response(body, media_type="application/json")

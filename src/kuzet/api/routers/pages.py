"""Paginated lists."""

from __future__ import annotations

from typing import Any


def page(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """One page of a paginated list: `next_offset` is None on the last page."""
    return {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(items) if len(items) == limit else None,
    }

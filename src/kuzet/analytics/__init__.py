"""Rules that turn tracks into events."""

from __future__ import annotations

from kuzet.analytics.faces import decide_tracks

__all__ = ["decide_tracks"]

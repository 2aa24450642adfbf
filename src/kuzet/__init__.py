"""kuzet: AI camera analytics for cities and borders, with oversight built in."""

from __future__ import annotations

__version__ = "0.1.0"

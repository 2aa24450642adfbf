"""Sources and decoding."""

from __future__ import annotations

from kuzet.ingest.images import load_image
from kuzet.ingest.sources import FrameSampler, FrameSource, open_source, redact_url

__all__ = ["FrameSampler", "FrameSource", "load_image", "open_source", "redact_url"]

"""Tracking and best-shot choice."""

from __future__ import annotations

from kuzet.track.base import Tracker, TrackerUpdate
from kuzet.track.bestshot import face_quality, keep_best
from kuzet.track.iou import IoUTracker

__all__ = ["IoUTracker", "Tracker", "TrackerUpdate", "face_quality", "keep_best"]

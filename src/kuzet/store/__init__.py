"""Persistence: database, migrations, repositories and the media folder."""

from __future__ import annotations

from kuzet.store.db import Database
from kuzet.store.media import MediaStore

__all__ = ["Database", "MediaStore"]

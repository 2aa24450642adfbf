"""Where kuzet keeps its state when not told."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "KUZET_HOME"


def resolve_data_dir(explicit: Path | None) -> Path:
    """The data directory: `--data-dir`, else $KUZET_HOME, else the user's data folder."""
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("kuzet", appauthor=False))

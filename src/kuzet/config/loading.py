"""Reading and explaining configuration files."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import ConfigError


def explain_validation_error(err: ValidationError) -> list[str]:
    """One readable line per problem: where in the file, and what is wrong."""
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    return lines


def load_config(path: Path | None) -> KuzetConfig:
    """Load and validate a YAML config file; None gives the defaults.

    Raises:
        ConfigError: When the file is missing, not YAML, or does not validate; the message lists every problem.

    """
    if path is None:
        return KuzetConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}", hint="it must be UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}", hint="fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level", hint="see docs/config.md")
    try:
        return KuzetConfig.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(explain_validation_error(exc))
        raise ConfigError(
            f"config file {path} has {len(exc.errors())} problem(s):\n  {problems}", hint="see docs/config.md"
        ) from None

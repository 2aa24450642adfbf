"""Secrets (stream passwords, broker credentials, webhook keys) kept out of the config file and out of logs.

A config field that holds a secret names where it is: `env:NAME` (an environment variable) or `secret:NAME` (a key in
the secrets file, a YAML mapping readable by its owner only).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

from kuzet.config.models import CameraConfig, DatabaseConfig
from kuzet.core.errors import ConfigError


class Secrets:
    """Named secret values; `resolve` turns an `env:`/`secret:` reference into its value."""

    def __init__(self, values: dict[str, str] | None = None, *, source: str = "(none)") -> None:
        self._values = dict(values or {})
        self.source = source

    def __repr__(self) -> str:
        return f"Secrets({len(self._values)} values from {self.source})"  # never the values

    @classmethod
    def load(cls, path: Path | None) -> Secrets:
        """Read a secrets file; None or a missing default file gives no secrets.

        Raises:
            ConfigError: The file is readable by others, is not a mapping of names to strings, or is not YAML.

        """
        if path is None or not path.exists():
            return cls()
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"secrets file {path} can be read by other users (mode {stat.filemode(mode)})",
                hint=f"chmod 600 {path}",
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            # The message names the problem, never a value.
            raise ConfigError(
                f"secrets file {path} cannot be read as YAML ({type(exc).__name__})",
                hint="it must be a UTF-8 YAML mapping of NAME: value",
            ) from None
        if data is None:
            data = {}
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigError(
                f"secrets file {path} must map names to strings", hint='quote every value, e.g. gate2: "s3cret"'
            )
        return cls(data, source=str(path))

    def resolve(self, ref: str, *, what: str) -> str:
        """The value behind `env:NAME` or `secret:NAME`.

        Raises:
            ConfigError: The variable or name is not set.

        """
        kind, _, name = ref.partition(":")
        if kind == "env":
            value = os.environ.get(name)
            if not value:
                raise ConfigError(f"{what}: environment variable {name} is not set", hint=f"export {name}=...")
            return value
        if kind == "secret":
            if name not in self._values:
                raise ConfigError(
                    f"{what}: secret {name!r} is not in {self.source}",
                    hint=f"add `{name}: ...` to the secrets file (run.secrets_file, default DATA_DIR/secrets.yaml)",
                )
            return self._values[name]
        raise ConfigError(f"{what}: {ref!r} is not env:NAME or secret:NAME", hint="see docs/live.md")

    def optional(self, ref: str | None, *, what: str) -> str | None:
        """`resolve`, or None when no reference is configured."""
        return None if ref is None else self.resolve(ref, what=what)


def camera_url(camera: CameraConfig, secrets: Secrets, *, record: bool = False) -> str:
    """The camera's stream URL with its credentials filled in (never log the result; log `camera.source`).

    `record`: the URL of its main stream (`record_source`, the same credentials), or "" when it names none.
    """
    url = camera.record_source if record else camera.source
    if not url:
        return url
    user = secrets.optional(camera.username, what=f"camera {camera.name} username")
    password = secrets.optional(camera.password, what=f"camera {camera.name} password")
    if user is None and password is None:
        return url
    return with_credentials(url, user, password)


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """`url` with a user name (else the one it names) and password in it."""
    parts = urlsplit(url)
    if user is None:
        user = parts.username  # a user name may stay in the URL; the password never does
    auth = quote(user or "", safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))


DATABASE_ENV = "KUZET_DATABASE_URL"


def database_url(config: DatabaseConfig, secrets: Secrets, data_dir: Path) -> str:
    """The store's URL with its password filled in (never log the result; log `redact_url` of it).

    KUZET_DATABASE_URL wins (it may carry its password); then `database.url` with `database.password`; else SQLite
    in the data directory.
    """
    env = os.environ.get(DATABASE_ENV, "").strip()
    if env:
        return env
    if config.url is None:
        return f"sqlite:///{data_dir / 'kuzet.db'}"
    password = secrets.optional(config.password, what="database password")
    return config.url if password is None else with_credentials(config.url, None, password)

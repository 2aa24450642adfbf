"""What every command shares: the global options, the services they open, sign-in, output, and the one error handler.

Commands never catch kuzet errors themselves: `GuardedGroup` (the root command group) prints any `KuzetError` as
"error: ..." with "what to do: ..." on stderr and exits with code 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from kuzet.config.loading import load_config
from kuzet.config.models import KuzetConfig
from kuzet.config.paths import resolve_data_dir
from kuzet.config.secrets import DATABASE_ENV
from kuzet.core.errors import AuthError, ConfigError, InputError, KuzetError
from kuzet.core.types import User
from kuzet.services.container import Services, build_services

# No console markup: messages quote names, paths and reasons people typed ("[/x]" must print, not crash).
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)
TOKEN_ENV = "KUZET_TOKEN"
TOKEN_FILE = "session.token"


class _State:
    data_dir: Path | None = None
    config: Path | None = None
    opened: list[Services] = []  # noqa: RUF012  # closed when the command ends


state = _State()


def fail(exc: KuzetError) -> typer.Exit:
    """Print a kuzet error (and what to do about it) on stderr; the exit to raise."""
    # Text objects, never markup: a message may quote user input such as a name "[/x]".
    err_console.print(Text.assemble(("error: ", "bold red"), exc.message), highlight=False)
    if exc.hint:
        err_console.print(Text.assemble(("what to do: ", "yellow"), exc.hint), highlight=False)
    return typer.Exit(code=2)


class GuardedGroup(TyperGroup):
    """The root command group: the one place where a command's `KuzetError` becomes a message and exit code 2."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # Typer's own (vendored) click context
        """Run the command; print a kuzet error instead of a traceback."""
        try:
            return super().invoke(ctx)
        except KuzetError as exc:
            raise fail(exc) from None
        finally:
            while state.opened:  # queued checkpoints reach the witnesses before the process exits
                state.opened.pop().close()


def data_dir() -> Path:
    """The data directory of this invocation (--data-dir, else $KUZET_HOME, else the user's data folder)."""
    return resolve_data_dir(state.data_dir)


def config_path() -> Path | None:
    """The config file of this invocation: --config, else DATA_DIR/config.yaml if present, else None (defaults)."""
    if state.config is None and (data_dir() / "config.yaml").is_file():
        return data_dir() / "config.yaml"
    return state.config


def config() -> KuzetConfig:
    """The config of this invocation: --config, else DATA_DIR/config.yaml if present, else the defaults."""
    return load_config(config_path())


def given_config() -> KuzetConfig:
    """The --config file only (commands that use no data directory), else the defaults."""
    return load_config(state.config)


def open_services() -> Services:
    """The services over this invocation's data directory (closed when the command ends)."""
    services = build_services(data_dir(), config())
    state.opened.append(services)
    return services


def open_initialised() -> Services:
    """The services over a data directory `kuzet init` has set up; refuses, creating nothing, when there is none.

    Raises:
        ConfigError: The data directory does not exist or holds no kuzet store (looked for before anything is
            opened or created), or a shared store has no users yet.
    """
    folder = data_dir()
    own_sqlite = not os.environ.get(DATABASE_ENV, "").strip() and config().database.url is None
    if not folder.is_dir() or (own_sqlite and not (folder / "kuzet.db").is_file()):  # keys live here on any store
        raise ConfigError(f"there is no kuzet data in {folder}", hint=NOT_INITIALISED)
    services = open_services()
    if not services.users.any_user():
        raise ConfigError(f"the store of {folder} has no users yet", hint=NOT_INITIALISED)
    return services


NOT_INITIALISED = (
    "point --data-dir (or KUZET_HOME) at the folder that holds your data, or set it up with "
    "`kuzet init --admin NAME --password-stdin`"
)


def signed_in(services: Services) -> User:
    """The user of KUZET_TOKEN, else of the session token `kuzet login` kept in the data directory."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        path = services.ctx.data_dir / TOKEN_FILE
        token = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if not token:
        raise AuthError(
            "not signed in",
            hint="run `kuzet login NAME --password-stdin` (or set KUZET_TOKEN); on a new data directory run "
            "`kuzet init --admin NAME --password-stdin` first",
        )
    return services.users.authenticate(token)


def session() -> tuple[Services, User]:
    """The services and the signed-in user (what most commands start with)."""
    services = open_initialised()
    return services, signed_in(services)


def read_password(from_stdin: bool) -> str:
    """A password from one line of stdin, or typed at a hidden prompt."""
    password = sys.stdin.readline().rstrip("\r\n") if from_stdin else typer.prompt("password", hide_input=True)
    if not password:
        raise AuthError("no password was given", hint="pipe it in with --password-stdin")
    return password


def save_token(folder: Path, token: str) -> None:
    """Keep a session token in `folder` (owner-only file)."""
    path = folder / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: an old 0644 token file is tightened here
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")


def json_out(data: object) -> None:
    """Print JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


MAX_ID = 2**53
"""The largest record id a command takes (the API's too): anything larger is refused before the database sees it."""


def check_output(path: Path, *, suffixes: tuple[str, ...] = (), source: Path | None = None, what: str = "") -> None:
    """Refuse an output path before any work is done.

    Refused: a missing folder, a folder itself, a type the writer cannot make (`suffixes`, lower case with the
    dot), and the `source` file itself (a copy must never replace its original).
    """
    if path.is_dir():
        raise InputError(f"{path} is a folder", hint="give a file name for the output")
    if not path.parent.is_dir():
        raise InputError(
            f"cannot write {path}: the folder {path.parent} does not exist", hint="create it first, or choose another"
        )
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(
            f"cannot write {what or 'the output'} as {path.name!r}", hint=f"name it with one of {', '.join(suffixes)}"
        )
    if source is not None and path.exists() and path.samefile(source):  # also through a link
        raise InputError(
            f"{path} is the source file itself: the copy would replace the original",
            hint="write the output to another file",
        )


def writable(suffixes: tuple[str, ...] = ()) -> Any:
    """A typer option callback: the output path is checked (`check_output`) before the command does any work."""

    def check(value: Path | None) -> Path | None:
        if value is not None:
            try:
                check_output(value, suffixes=suffixes)
            except InputError as exc:
                raise typer.BadParameter(f"{exc.message} ({exc.hint})" if exc.hint else str(exc.message)) from None
        return value

    return check


def write_json(path: Path, data: object) -> None:
    """Write JSON to a file."""
    try:
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}", hint="check the folder exists") from None


def roles(user: User) -> str:
    """A user's roles, comma-separated."""
    return ", ".join(sorted(user.roles))

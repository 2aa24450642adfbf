"""Set-up, sign-in and users: `kuzet init`, `login`, `logout`, `whoami`, `users`."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.common import (
    TOKEN_FILE,
    console,
    open_initialised,
    open_services,
    read_password,
    roles,
    save_token,
    session,
    signed_in,
)
from kuzet.core.errors import AuthError
from kuzet.core.types import ROLES

users_app = typer.Typer(help="Manage users (admins).", no_args_is_help=True)
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]


def init(
    admin: Annotated[str, typer.Option("--admin", help="Name of the first administrator.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create the data directory and its first administrator."""
    password = read_password(password_stdin)
    services = open_services()
    user = services.users.init_admin(admin, password)
    console.print(f"initialised {services.ctx.data_dir} with administrator {user.name!r}", highlight=False)


def login(name: Annotated[str, typer.Argument(help="User name.")], password_stdin: PasswordStdin = False) -> None:
    """Sign in; the session token is kept in the data directory (owner-only file)."""
    services = open_initialised()
    password = read_password(password_stdin)
    user, token = services.users.login(name, password)
    save_token(services.ctx.data_dir, token)
    console.print(f"signed in as {user.name} ({roles(user)})", highlight=False)


def logout() -> None:
    """End the current session."""
    services = open_services()
    path = services.ctx.data_dir / TOKEN_FILE
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        # An expired or revoked session needs only its file removed.
        with contextlib.suppress(AuthError):
            services.users.logout(token)
        path.unlink()
    console.print("signed out")


def whoami() -> None:
    """Show the signed-in user and their roles."""
    user = signed_in(open_initialised())
    console.print(f"{user.name} ({roles(user)})", highlight=False)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="New user's name.")],
    role: Annotated[list[str], typer.Option("--role", help=f"Role (repeatable): {', '.join(ROLES)}.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user (admins only)."""
    password = read_password(password_stdin)
    services, actor = session()
    user = services.users.add(actor, name, password, role)
    console.print(f"added {user.name} ({roles(user)})", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """List users and their roles."""
    services, actor = session()
    table = Table("id", "name", "roles")
    for u in services.users.list(actor):
        table.add_row(str(u.user_id), u.name, roles(u))
    console.print(table)

"""The `kuzet` command line: the command tree over `kuzet.services`, one module per command group.

Commands act as the signed-in user: `kuzet login` stores a session token in the data directory (readable by its
owner only); `KUZET_TOKEN` in the environment takes precedence. Every kuzet error is reported by one handler
(`common.GuardedGroup`): "error: ..." and "what to do: ..." on stderr, exit code 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from kuzet.cli import account, analysis, media, models, people, privacy, serve, tools, watchlists
from kuzet.cli.audit import audit_app
from kuzet.cli.common import GuardedGroup, state

app = typer.Typer(
    cls=GuardedGroup,
    help="kuzet: camera analytics with oversight built in.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

COMMANDS: list[tuple[Callable[..., None], str | None]] = [
    (account.init, None),
    (account.login, None),
    (account.logout, None),
    (account.whoami, None),
    (people.enroll, None),
    (analysis.analyze, None),
    (analysis.events, None),
    (media.redact, None),
    (serve.serve, None),
    (serve.run_live, "run"),
    (serve.live_status, "status"),
    (serve.demo, None),
    (tools.bench, None),
]
"""Top-level commands, in the order `kuzet --help` lists them (the command groups follow)."""
for command, name in COMMANDS:
    app.command(name)(command)

for group, group_name in [
    (tools.eval_app, "eval"),
    (tools.config_app, "config"),
    (account.users_app, "users"),
    (watchlists.watchlist_app, "watchlist"),
    (watchlists.review_app, "review"),
    (audit_app, "audit"),
    (media.media_app, "media"),
    (media.access_app, "access"),
    (privacy.hold_app, "hold"),
    (privacy.retention_app, "retention"),
    (privacy.subject_app, "subject"),
    (privacy.report_app, "report"),
    (privacy.keys_app, "keys"),
    (media.recordings_app, "recordings"),
    (people.people_app, "people"),
    (models.models_app, "models"),
]:
    app.add_typer(group, name=group_name)


@app.callback()
def _main(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Folder for all state (database, media, keys); default $KUZET_HOME."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config file; default DATA_DIR/config.yaml if present.")
    ] = None,
) -> None:
    state.data_dir = data_dir
    state.config = config


def main() -> None:
    """Console-script entry point."""
    app()

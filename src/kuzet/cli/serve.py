"""The long-running side: `kuzet serve`, `kuzet run`, `kuzet status` and `kuzet demo`."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kuzet.cli import common
from kuzet.cli.common import console, err_console, given_config, json_out, open_services, session
from kuzet.config.secrets import DATABASE_ENV
from kuzet.core.errors import InputError
from kuzet.services.container import Services, build_services
from kuzet.store.status import ServiceStatus

if TYPE_CHECKING:
    from kuzet.runtime.engines import Engine

LOCAL = ("127.0.0.1", "localhost", "::1")
Port = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")]


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """How kuzet runs uvicorn.

    uvicorn's own proxy handling is off (it would believe X-Forwarded-For from loopback); kuzet reads that header
    itself, only from the config's `api.trusted_proxies`.
    """
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        "timeout_keep_alive": 30,
        # open live streams (/api/stream) would hold a shutdown forever, and the services' close with it
        "timeout_graceful_shutdown": 10,
        "proxy_headers": False,
        "forwarded_allow_ips": "",
    }


def serve_app(services: Services, host: str, port: int) -> None:
    """Run the API and dashboard until interrupted."""
    import uvicorn

    from kuzet.web.app import closing, create_app

    _note_beyond(host)
    app = create_app(services)
    # closed as the server shuts down: uvicorn ends the process by signal after that, before the command's own close
    app.router.lifespan_context = closing(app.router.lifespan_context, services.close)
    uvicorn.run(app, **uvicorn_options(host, port))


def _note_beyond(host: str) -> None:
    if host not in LOCAL:
        err_console.print(
            "note: serving beyond this machine; put kuzet behind TLS (a reverse proxy) "
            "so cookies and tokens stay secret"
        )


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Port = 8080,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Server processes on the one port (one process answers on about one core); default 1.",
        ),
    ] = 1,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the dashboard."""
    check_can_listen(host, port)
    services = open_services()
    console.print(f"kuzet dashboard on http://{host}:{port}/ (API docs at /docs); Ctrl-C stops it", highlight=False)
    if workers == 1:
        serve_app(services, host, port)
    else:
        serve_workers(services, host, port, workers)


def check_can_listen(host: str, port: int) -> None:
    """Refuse a host this machine cannot listen on, or a port another program holds, before anything is opened.

    uvicorn would say so only after kuzet had printed the address it serves on, and then exit with its own log line.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no hindrance
            probe.bind(address)
    except socket.gaierror:
        raise InputError(
            f"cannot listen on {host}: no such address on this machine",
            hint="give an address of this machine, "
            "e.g. --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)",
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="another program (another kuzet serve?) holds the port: choose another with --port, or stop it",
        ) from None


def serve_workers(services: Services, host: str, port: int, workers: int) -> None:
    """Run `workers` server processes on one port until interrupted (`kuzet.web.app.from_environment` in each)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from kuzet.web.app import WORKER_CONFIG_ENV, WORKER_DATA_ENV

    # The store is opened and prepared (migrated, a key rotation finished) here, once; each worker opens its own
    # without preparing it again.
    path = common.config_path()
    os.environ[WORKER_DATA_ENV] = str(services.ctx.data_dir.resolve())
    os.environ[WORKER_CONFIG_ENV] = str(path.resolve()) if path is not None else ""
    _note_beyond(host)
    config = uvicorn.Config(
        "kuzet.web.app:from_environment", factory=True, workers=workers, **uvicorn_options(host, port)
    )
    port_share = PortShare.claim(host, port)
    try:
        Multiprocess(config, sockets=[port_share]).run()  # restarts a worker that dies; SIGTERM or Ctrl-C stops all
    except KeyboardInterrupt:
        pass
    finally:
        port_share.close()


class PortShare(socket.socket):
    """The port as `kuzet serve --workers N`'s supervising process holds it: bound, never listening.

    Each worker process gets a listening socket of its own on the same port (SO_REUSEPORT): a worker unpickles this
    object as a new socket bound to the same address. The kernel then spreads new connections evenly over the
    workers; with one socket shared by all of them, whichever worker woke first took most (up to 95 of `wrk -c100`'s
    connections). Linux lets only processes of the same user join the port, and the supervisor's bound socket keeps
    anyone else from taking it while a worker restarts.
    """

    @classmethod
    def claim(cls, host: str, port: int) -> PortShare:
        """Bind `host:port` (IPv6 when the host has a colon; port 0 picks a free port for every worker)."""
        sock = cls(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            _reuse_port(sock).bind((host, port))
        except OSError as exc:
            sock.close()
            raise InputError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                hint="choose another --port, or stop whatever holds this one (`ss -ltnp` names it)",
            ) from None
        return sock

    def __reduce__(self) -> tuple[Callable[[int, str, int], socket.socket], tuple[int, str, int]]:
        host, port = self.getsockname()[:2]
        return _worker_socket, (int(self.family), host, port)


def _reuse_port(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _worker_socket(family: int, host: str, port: int) -> socket.socket:
    """A worker's own socket on the supervisor's port (uvicorn makes it listen)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    _reuse_port(sock).bind((host, port))
    return sock


def run_live(
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config with the cameras (same as the global --config).")
    ] = None,
    camera: Annotated[
        list[str] | None,
        typer.Option("--camera", help="Run only this camera (repeatable); default: every enabled one."),
    ] = None,
    serve_too: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Also serve the API, dashboard and /metrics in this process.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to serve on (with --serve).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port (with --serve).")] = 8080,
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="Where camera workers run: local (a process each, on this machine) or ray (a cluster)."
        ),
    ] = "local",
    address: Annotated[
        str,
        typer.Option("--address", help="The Ray cluster to join (with --engine ray; default: RAY_ADDRESS, or local)."),
    ] = "",
) -> None:
    """Run every live camera in the config until stopped (SIGTERM or Ctrl-C), one worker process per camera."""
    import logging
    import threading

    import uvicorn

    from kuzet.runtime.supervisor import Supervisor
    from kuzet.web.app import create_app

    if config is not None:
        common.state.config = config
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    services, actor = session()
    workers = _engine(services, engine, address)
    try:
        supervisor = Supervisor(services, actor, secrets=services.ctx.secrets(), cameras=camera or None, engine=workers)
    except BaseException:
        if workers is not None:
            workers.close()
        raise
    server = thread = None
    if serve_too:
        server = uvicorn.Server(uvicorn.Config(create_app(services), **uvicorn_options(host, port)))
        thread = threading.Thread(target=server.run, name="api", daemon=True)
        thread.start()
        console.print(f"dashboard and API on http://{host}:{port}/ (metrics at /metrics)", highlight=False)
    names = ", ".join(supervisor.slots)
    console.print(f"running {len(supervisor.slots)} camera(s): {names}; `kuzet status` shows them; Ctrl-C stops")
    try:
        supervisor.run_forever()
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(10)
    console.print("stopped: every camera committed what it had decided")


def _engine(services: Services, engine: str, address: str) -> Engine | None:
    """None (local worker processes, the supervisor's default) or a Ray cluster to place them on."""
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}", hint="--engine local (default) or --engine ray")
    if address and engine != "ray":
        raise InputError("--address names a Ray cluster", hint="add --engine ray")
    if engine == "local":
        return None
    from kuzet.runtime.engines import RayEngine

    cams = services.ctx.config.cameras
    return RayEngine(address, {c.name: c.resources for c in cams if c.resources})


def _status_table(status: ServiceStatus) -> Table:
    now = time.time()
    table = Table(title=f"kuzet run ({status.state}, updated {now - status.updated:.0f} s ago)")
    for col in (
        "camera",
        "state",
        "node",
        "decoder",
        "since",
        "analysed",
        "dropped",
        "reconnects",
        "restarts",
        "events",
        "reason",
    ):
        table.add_column(col)
    for c in status.cameras:
        table.add_row(
            c.camera,
            c.state,
            c.node,
            c.decoder,
            f"{now - c.since:.0f} s",
            str(c.frames_analysed),
            str(c.frames_dropped),
            str(c.reconnects),
            str(c.worker_restarts),
            str(c.events + c.alerts + c.passages + c.violations),
            c.reason,
        )
    if status.detector_pid or status.detector_frames:
        table.caption = (
            f"shared detector (pid {status.detector_pid}): {status.detector_frames} frames in {status.detector_calls}"
            f" model calls, largest batch {status.detector_largest_batch}, {status.detector_restarts} restarts"
        )
    return table


def live_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Live cameras as `kuzet run` last reported them: state, reason, frames, reconnects."""
    services, actor = session()
    status = services.cameras.live_status(actor)
    if as_json:
        json_out(asdict(status))
    else:
        console.print(_status_table(status))


DEMO_MARK = ".kuzet-demo"
"""The file that marks a data directory as the demo's (the demo may wipe it and start again)."""


def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep earlier demo data instead of starting afresh.")] = False,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the dashboard on localhost afterwards.")
    ] = True,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Dashboard port.")] = 8080,
) -> None:
    """A whole lawful-watchlist scenario on images shipped with installed packages, then the dashboard.

    It runs in the data directory itself (so `kuzet login` and every other command find its users afterwards),
    which must be new or hold an earlier demo: a folder with other data is never touched.
    """
    from kuzet.demo import run_demo

    root = common.data_dir()
    if os.environ.get(DATABASE_ENV, "").strip() or given_config().database.url is not None:
        raise InputError(
            "the demo runs on its own SQLite store, never on a shared database",
            hint=f"unset {DATABASE_ENV} (and database.url in the --config file) for the demo",
        )
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file, not a folder", hint="give the demo a folder: kuzet --data-dir DIR demo")
    if root.exists() and any(root.iterdir()):
        # an older kuzet kept its demo's data directory in DATA_DIR/demo; a folder merely named so is not one
        legacy = {p.name for p in root.iterdir()} == {"demo"} and (root / "demo" / "kuzet.db").is_file()
        if not (root / DEMO_MARK).is_file() and not legacy:
            raise InputError(
                f"{root} holds data that is not kuzet's demo; the demo does not touch it",
                hint="run the demo in a folder of its own: kuzet --data-dir ~/kuzet-demo demo",
            )
        if not keep:
            shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / DEMO_MARK).write_text("made by `kuzet demo`; the demo starts afresh here each time\n", encoding="utf-8")
    run_demo(root, config=given_config(), console=console, progress_console=err_console)
    console.print(
        f"   the demo's data is in {root}: e.g. `kuzet --data-dir {root} login auditor --password-stdin`",
        highlight=False,
    )
    if serve_after:
        console.print(
            f"7. the dashboard is at http://127.0.0.1:{port}/ : sign in with a demo user above; Ctrl-C stops it",
            highlight=False,
        )
        serve_app(build_services(root, given_config()), "127.0.0.1", port)

"""Where camera workers run: a local process each (the default), or an actor each on a Ray cluster.

The supervisor treats both alike through `WorkerHandle`: start a camera's worker, read its messages without
blocking, tell whether it is alive, kill it, say how it ended. Restarts with backoff, stall detection and status
stay the supervisor's (`runtime.supervisor`): on Ray, a worker whose node died is started again like any dead
worker, and Ray places the new actor on a node that is alive and has the camera's resources.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import socket
import threading
from dataclasses import replace
from typing import Any, Protocol

from kuzet.core.errors import ConfigError
from kuzet.runtime.worker import WorkerSpec, worker_main

log = logging.getLogger("kuzet.run")


class WorkerHandle(Protocol):
    """One started worker of one camera."""

    pid: int
    node: str

    def messages(self, limit: int) -> list[object]:
        """Up to `limit` messages the worker sent (status updates), without waiting."""

    def alive(self) -> bool:
        """Whether it still runs (as far as can be told without waiting)."""

    def kill(self) -> None:
        """End it now."""

    def terminate(self) -> None:
        """End it politely (SIGTERM), then for sure."""

    def ended(self) -> str:
        """How it ended ("killed by signal 9", "its node was lost", ...)."""


class Engine(Protocol):
    """Starts workers and asks them all to stop."""

    name: str

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        """Start a worker for `spec.camera`."""

    def stop_all(self) -> None:
        """Ask every worker to finish (commit what it decided and end)."""

    def close(self) -> None:
        """Let go of the engine (a Ray connection)."""


class _ProcessHandle:
    def __init__(self, ctx: Any, spec: WorkerSpec, stop: Any) -> None:
        self.queue = ctx.Queue()
        self.process = ctx.Process(
            target=worker_main, args=(spec, self.queue, stop), name=f"kuzet-camera-{spec.camera}"
        )
        self.process.start()
        self.pid = int(self.process.pid or 0)
        self.node = socket.gethostname()

    def messages(self, limit: int) -> list[object]:
        out: list[object] = []
        while len(out) < limit:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
            except (EOFError, OSError, ValueError):
                break  # a worker killed mid-message; its queue goes with it
        return out

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)

    def terminate(self) -> None:
        self.process.terminate()
        self.process.join(3)
        if self.process.is_alive():
            self.kill()

    def ended(self) -> str:
        self.process.join(0)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"worker killed by signal {-code}"
        return f"worker exited with code {code}"


class ProcessEngine:
    """A fresh interpreter per camera on this machine (spawned: no inherited threads or locks)."""

    name = "local"

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        """Spawn the camera's worker process."""
        return _ProcessHandle(self._ctx, spec, self._stop)

    def stop_all(self) -> None:
        """Set the flag every worker checks."""
        self._stop.set()

    def close(self) -> None:
        """Nothing to let go of."""


class CameraActor:
    """A camera's worker inside a Ray actor: the worker runs in a thread; the supervisor drains its messages."""

    def __init__(self, spec: WorkerSpec) -> None:
        import ray

        from kuzet.core.accel import share_cores
        from kuzet.runtime.worker import CameraWorker

        context = ray.get_runtime_context()
        assigned: dict[str, float] = context.get_assigned_resources()  # type: ignore[no-untyped-call]
        cpus = float(assigned.get("CPU", 1.0)) or 1.0
        sharing = max(1, int((os.cpu_count() or 1) / cpus))  # model threads: this actor's share of the node's cores
        node = f"{socket.gethostname()}/{context.get_node_id()[:12]}"
        self.spec = replace(spec, node=node, sharing=sharing)
        self._messages: queue.Queue[object] = queue.Queue()
        self._stop = threading.Event()
        self._error = ""

        def run() -> None:
            try:
                share_cores(self.spec.sharing)  # model threads: this actor's share of the node
                CameraWorker(self.spec, self._messages, self._stop.is_set).run()
            except BaseException as exc:  # reported to the supervisor, which restarts the worker
                self._error = f"{type(exc).__name__}: {exc}"
                raise

        self._thread = threading.Thread(target=run, name=f"kuzet-camera-{spec.camera}", daemon=True)
        self._thread.start()

    def drain(self, limit: int) -> tuple[list[object], bool, str, int, str]:
        """(messages, whether the worker thread still runs, its error, this process's id, its node)."""
        out: list[object] = []
        while len(out) < limit:
            try:
                out.append(self._messages.get_nowait())
            except queue.Empty:
                break
        return out, self._thread.is_alive(), self._error, os.getpid(), self.spec.node

    def stop(self) -> None:
        """Ask the worker to commit what it decided and end."""
        self._stop.set()


class _RayHandle:
    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.pid = 0
        self.node = ""
        self._pending: Any = None
        self._alive = True
        self._ended = ""
        self._waiting: list[object] = []

    def _poll(self, limit: int) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        if not self._alive:
            return
        if self._pending is None:
            self._pending = self.actor.drain.remote(limit)
        ready, _ = ray.wait([self._pending], timeout=0)
        if not ready:
            return
        ref, self._pending = self._pending, None
        try:
            messages, running, error, pid, node = ray.get(ref, timeout=5)
        except RayActorError as exc:
            self._alive = False
            self._ended = "its Ray actor died (node lost or process killed)"
            log.warning("camera worker actor died: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        except GetTimeoutError:
            return
        self._waiting += messages
        self.pid, self.node = pid, node
        if not running:  # the actor outlives its worker thread: end it, so that its CPUs and GPUs are free again
            self._alive = False
            self._ended = f"worker ended: {error}" if error else "worker ended"
            with contextlib.suppress(Exception):
                ray.kill(self.actor, no_restart=True)

    def messages(self, limit: int) -> list[object]:
        self._poll(limit)
        out, self._waiting = self._waiting, []
        return out

    def alive(self) -> bool:
        self._poll(100)
        return self._alive

    def kill(self) -> None:
        import ray

        ray.kill(self.actor, no_restart=True)
        self._alive = False
        self._ended = self._ended or "killed"

    def terminate(self) -> None:
        self.kill()

    def ended(self) -> str:
        return self._ended or "its Ray actor ended"


def _reachable(address: str) -> None:
    """Refuse at once a `host:port` cluster address nothing answers at (Ray itself would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "", "auto", "local" or a ray:// client address: Ray's own handling
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot join the Ray cluster at {address}: {exc.strerror or exc}",
            hint="start it with `ray start --head` and pass the address it prints with --address",
        ) from None


class RayEngine:
    """Each camera's worker as an actor on a Ray cluster, placed by the camera's resources.

    `address` is the cluster to join (`ray start --head` prints it; empty: `RAY_ADDRESS`, else a Ray instance
    started on this machine). A camera's `resources` name what its worker needs (`CPU`, `GPU`, or custom resources
    a node was started with, e.g. `{site_north: 1}`).
    """

    name = "ray"

    def __init__(self, address: str = "", resources: dict[str, dict[str, float]] | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "the Ray engine needs Ray, which is not installed", hint="pip install 'kuzet[cluster]' (or ray)"
            ) from None
        self._ray = ray
        self.resources = resources or {}
        self.handles: list[_RayHandle] = []
        self._owned = not ray.is_initialized()
        if self._owned:
            _reachable(address)
            try:
                ray.init(address=address or None, logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"cannot join the Ray cluster at {address or os.environ.get('RAY_ADDRESS', '(local)')}: {exc}",
                    hint="start it with `ray start --head` and pass its address with --address",
                ) from None
        self._actor = ray.remote(CameraActor)

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        """Create the camera's actor wherever Ray finds its resources."""
        wanted = dict(self.resources.get(spec.camera, {}))
        cpus = wanted.pop("CPU", 1.0)
        gpus = wanted.pop("GPU", 0.0)
        actor = self._actor.options(
            num_cpus=cpus, num_gpus=gpus, resources=wanted or None, max_restarts=0, name=None
        ).remote(spec)
        handle = _RayHandle(actor)
        self.handles.append(handle)
        return handle

    def stop_all(self) -> None:
        """Ask every actor's worker to finish."""
        for h in self.handles:
            if h._alive:
                try:
                    h.actor.stop.remote()
                except Exception:  # an actor already gone
                    h._alive = False

    def close(self) -> None:
        """Kill actors still there; disconnect from the cluster if this engine connected."""
        for h in self.handles:
            with contextlib.suppress(Exception):  # an actor whose node is gone
                h.kill()
        self.handles.clear()
        if self._owned:
            self._ray.shutdown()

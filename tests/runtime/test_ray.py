"""`kuzet run --engine ray`: camera workers as actors on a real Ray cluster of a head and worker nodes on loopback.

The cluster is Ray's own multi-node test utility (`ray.cluster_utils.Cluster`: a head and raylets as separate
processes on this machine); the camera is served by the RTSP test server. The fault test kills the node running the
camera with SIGKILL mid-stream: the camera resumes on the other node, every committed event is still there and
the ledger verifies.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kuzet.core.errors import ConfigError
from kuzet.runtime.engines import RayEngine
from kuzet.runtime.supervisor import Supervisor
from tests.runtime.test_run import PURPOSE, Running, event_ids, make_service
from tests.support.servers import RtspServer

ray = pytest.importorskip("ray")  # a dependency of the test extra: absent only outside `make install-test`
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.store
NODE = {"object_store_memory": 80 * 2**20}
"""Small object stores: the workers pass only status messages."""


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A head (no CPUs: it runs no camera) and one worker node; quick node failure detection."""
    head = {
        "num_cpus": 0,
        "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3},
        **NODE,
    }
    c = cluster_utils.Cluster(initialize_head=True, head_node_args=head)
    c.add_node(num_cpus=2, **NODE)
    c.wait_for_nodes()
    yield c
    with contextlib.suppress(Exception):
        ray.shutdown()
    c.shutdown()


def _start(sup: Supervisor, running: list[Supervisor]) -> Running:
    running.append(sup)
    sup.start()
    return Running(sup)


@pytest.fixture
def running() -> Iterator[Callable[[Supervisor], Running]]:
    started: list[Supervisor] = []
    yield lambda sup: _start(sup, started)
    for sup in started:
        if not sup.stopping:
            sup.stop()


def test_cameras_move_to_another_node_when_theirs_is_killed(
    tmp_path: Path, faces_dir: Path, rtsp: RtspServer, cluster: Any, running: Callable[[Supervisor], Running]
) -> None:
    root = tmp_path / "data"
    config = {
        "cameras": [{"name": "stage", "source": rtsp.url("stage"), "purpose": PURPOSE, "resources": {"CPU": 1}}],
        "run": {"reconnect_initial_s": 0.3, "reconnect_max_s": 1.0},
    }
    svc, admin = make_service(root, config, faces_dir)
    engine = RayEngine(cluster.address, {"stage": {"CPU": 1}})
    run = running(Supervisor(svc.services, admin, secrets=svc.secrets(), engine=engine))
    run.until(lambda: run.cam("stage").events >= 1, 120, "a committed event from the Ray actor")
    first = run.cam("stage")
    assert "/" in first.node and first.pid != os.getpid()  # host/node id of the actor's node, another process
    committed = event_ids(root)
    events = first.events

    # a second node joins; the first is killed (its raylet and every process on it, the camera's worker too)
    second = cluster.add_node(num_cpus=2, **NODE)
    cluster.wait_for_nodes()
    doomed = next(n for n in cluster.worker_nodes if n is not second)
    cluster.remove_node(doomed, allow_graceful=False)
    with contextlib.suppress(ProcessLookupError):
        os.kill(first.pid, signal.SIGKILL)
    run.until(lambda: run.cam("stage").worker_restarts >= 1, 60, "the supervisor to notice the lost node")
    run.until(
        lambda: run.cam("stage").state == "up" and run.cam("stage").node not in ("", first.node),
        120,
        "the camera on the other node",
    )
    run.until(lambda: run.cam("stage").events > events, 120, "new events from the other node")
    assert committed <= event_ids(root)  # nothing committed on the lost node is lost
    run.sup.stop()
    assert svc.audit_verify(None).ok


def test_an_unreachable_cluster_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="cannot join the Ray cluster"):
        RayEngine("127.0.0.1:1")

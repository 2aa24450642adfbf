"""The outbox: notices stored with their decision, delivered at least once, in order, after any crash.

The relay is tested with in-memory destinations (to see exactly what is offered when) beside the real ones: a
mosquitto broker and a webhook endpoint on loopback, with a relay stopped before it could deliver and a new one
that delivers later with the same delivery ids.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kuzet.config.models import MqttConfig, WebhookConfig
from kuzet.config.secrets import Secrets
from kuzet.core.types import JsonValue
from kuzet.runtime.integrations import Integrations, MqttPublisher, WebhookSender
from kuzet.runtime.outbox import OutboxRelay
from kuzet.services.container import Services, build_services
from kuzet.store.repositories.outbox import OutboxItem
from tests.conftest import Broker
from tests.support.servers import free_port

pytestmark = pytest.mark.store


def _store(svc: Services, n: int, *, start: int = 0) -> None:
    """`n` notices, as a live camera's commit writes them (in a transaction of the unit of work)."""
    with svc.uow.tx() as w:
        for i in range(start, start + n):
            data: dict[str, JsonValue] = {"id": i, "identity": "Ann Example", "score": 0.9}
            w.outbox.add("event", "gate", data, now=svc.ctx.now())


def _outbox(svc: Services) -> list[OutboxItem]:
    with svc.uow.read() as r:
        return r.outbox.after(0, limit=10_000)


class Memory:
    """A destination that receives what it is offered when the test says so."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.offered: list[OutboxItem] = []
        self.arrived = 0
        self._reported = 0

    def offer(self, item: OutboxItem) -> None:
        self.offered.append(item)

    def arrive(self, n: int) -> None:
        self.arrived = self.offered[n - 1].id

    def received_upto(self) -> int | None:
        if self.arrived == self._reported:
            return None
        self._reported = self.arrived
        return self.arrived

    def in_flight(self) -> int:
        return sum(1 for i in self.offered if i.id > self.arrived)

    def rewind(self) -> int | None:
        return None


def test_a_new_destination_starts_at_the_newest_notice_and_cursors_survive_a_restart(tmp_path: Path) -> None:
    svc = build_services(tmp_path / "data")
    try:
        _store(svc, 3)  # before anyone listened: not replayed to a new receiver
        a, b = Memory("a"), Memory("b")
        relay = OutboxRelay(svc, [a, b], interval_s=0)
        relay.pump()
        assert a.offered == [] and b.offered == []
        _store(svc, 4, start=3)
        relay.pump()
        assert [i.data["id"] for i in a.offered] == [3, 4, 5, 6] == [i.data["id"] for i in b.offered]
        a.arrive(4)
        b.arrive(2)
        relay.pump()
        # only what every destination received is deleted
        assert [i.data["id"] for i in _outbox(svc)] == [5, 6]

        # a crash now: the next relay offers b what it had not received, with the same delivery ids, and a nothing
        again_a, again_b = Memory("a"), Memory("b")
        OutboxRelay(svc, [again_a, again_b], interval_s=0).pump()
        assert again_a.offered == []
        assert [(i.data["id"], i.delivery_id) for i in again_b.offered] == [
            (i.data["id"], i.delivery_id) for i in b.offered[2:]
        ]
        again_b.arrive(2)
        relay2 = OutboxRelay(svc, [again_a, again_b], interval_s=0)
        relay2.pump()
        assert _outbox(svc) == []
        _store(svc, 1, start=7)  # ids go on after a trim (never reused: cursors compare them)
        relay2.pump()
        assert again_a.offered[-1].data["id"] == 7 and again_a.offered[-1].id > b.offered[-1].id
    finally:
        svc.close()


def test_a_slow_destination_is_offered_at_most_max_in_flight(tmp_path: Path) -> None:
    svc = build_services(tmp_path / "data")
    try:
        slow = Memory("slow")
        relay = OutboxRelay(svc, [slow], interval_s=0, max_in_flight=5)
        relay.pump()
        _store(svc, 12)
        relay.pump()
        relay.pump()
        assert len(slow.offered) == 5
        slow.arrive(5)
        relay.pump()
        assert len(slow.offered) == 10
    finally:
        svc.close()


class Endpoint:
    """A webhook endpoint on loopback that answers 200, or refuses connections while `down`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.port = free_port()
        self.server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers["X-Kuzet-Delivery"], json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _until(predicate: Callable[[], bool], relay: OutboxRelay, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        relay.pump()
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_notices_stored_while_delivery_failed_arrive_after_a_restart_with_their_ids(
    tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = build_services(tmp_path / "data")
    endpoint = Endpoint()
    monkeypatch.setenv("KZ_HOOK", "hook-key-1")
    monkeypatch.setenv("KZ_BROKER_USER", mosquitto.user)
    monkeypatch.setenv("KZ_BROKER_PASS", mosquitto.password)
    secrets = Secrets()
    hook = WebhookConfig(url=f"http://127.0.0.1:{endpoint.port}/kuzet", secret="env:KZ_HOOK", max_attempts=20)
    broker = MqttConfig(
        host="127.0.0.1", port=mosquitto.port, username="env:KZ_BROKER_USER", password="env:KZ_BROKER_PASS"
    )
    heard: list[dict[str, Any]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.username_pw_set(mosquitto.user, mosquitto.password)
    sub.on_message = lambda c, u, m: heard.append(json.loads(m.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("kuzet/events/#", qos=1)
    sub.loop_start()
    try:
        # the first `kuzet run`: the webhook endpoint is down; the service stops before it comes back
        first = Integrations(None, [WebhookSender(hook, secrets)])
        relay = OutboxRelay(svc, first.destinations(), interval_s=0)
        relay.pump()
        _store(svc, 5)
        relay.pump()
        time.sleep(0.5)  # attempts fail meanwhile
        first.webhooks[0].close(timeout=0.2)  # stopped mid-retry
        relay.record_progress()
        assert len(_outbox(svc)) == 5  # nothing was delivered: everything is still there
        stored = {i.delivery_id: i.data["id"] for i in _outbox(svc)}

        # the next start: the endpoint is back, and MQTT is configured too (a new destination: only new notices)
        endpoint.up()
        second = Integrations(MqttPublisher(broker, secrets), [WebhookSender(hook, secrets)])
        relay = OutboxRelay(svc, second.destinations(), interval_s=0)
        _until(lambda: len(endpoint.received) >= 5, relay, 30, "the webhook deliveries")
        assert {d: body["data"]["id"] for d, body in endpoint.received} == stored  # same ids, each once, in order
        assert [body["data"]["id"] for _, body in endpoint.received] == [0, 1, 2, 3, 4]
        _store(svc, 2, start=5)
        _until(lambda: len(heard) >= 2 and len(endpoint.received) >= 7, relay, 30, "MQTT and webhook")
        assert [m["data"]["id"] for m in heard] == [5, 6]
        webhook_ids = {d for d, body in endpoint.received if body["data"]["id"] in (5, 6)}
        assert {m["delivery"] for m in heard} == webhook_ids  # one delivery id per notice, wherever it goes
        _until(lambda: not _outbox(svc), relay, 10, "the delivered notices to be deleted")
        second.close()
    finally:
        sub.loop_stop()
        sub.disconnect()
        endpoint.down()
        svc.close()


def test_stored_notices_wait_for_a_broker_that_is_down_and_arrive_once_it_is_back(
    tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import subprocess

    svc = build_services(tmp_path / "data")
    monkeypatch.setenv("KZ_BROKER_USER", mosquitto.user)
    monkeypatch.setenv("KZ_BROKER_PASS", mosquitto.password)
    broker = MqttConfig(
        host="127.0.0.1", port=mosquitto.port, username="env:KZ_BROKER_USER", password="env:KZ_BROKER_PASS"
    )
    mosquitto.proc.terminate()  # the broker is down when kuzet run starts
    mosquitto.proc.wait(5)
    publisher = MqttPublisher(broker, Secrets())
    relay = OutboxRelay(svc, [publisher], interval_s=0)
    again = None
    try:
        relay.pump()
        _store(svc, 3)
        for _ in range(10):  # pumping while the broker is down raises nothing and delivers nothing
            relay.pump()
            time.sleep(0.1)
        assert len(_outbox(svc)) == 3 and publisher.in_flight() == 3
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        again = subprocess.Popen([binary, "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.DEVNULL)
        # the queued messages go out when the publisher reconnects; the cursor moves once the broker acknowledged
        _until(lambda: not _outbox(svc), relay, 30, "the broker to acknowledge the waiting notices")
        assert publisher.in_flight() == 0
    finally:
        publisher.close()
        if again is not None:
            again.terminate()
            again.wait(5)
        svc.close()

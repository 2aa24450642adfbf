"""Witnesses over the network: the MQTT retained topic and signed webhooks receive every committed checkpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kuzet.app import Kuzet
from kuzet.audit.ledger import AuditLedger
from kuzet.audit.verify import TrustedCheckpoint
from kuzet.config.models import KuzetConfig
from kuzet.core.signatures import verify_signature
from tests.conftest import PASSWORD, Broker, wait_until

pytestmark = pytest.mark.store


class Receiver:
    """A webhook endpoint on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/witness"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_mqtt_and_webhook_witnesses_receive_signed_checkpoints(
    tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = Receiver()
    monkeypatch.setenv("KZ_WITNESS_PASS", mosquitto.password)
    monkeypatch.setenv("KZ_WITNESS_HOOK", "witness-hook-key")
    config = KuzetConfig.model_validate(
        {
            "audit": {
                "witnesses": [
                    {
                        "type": "mqtt",
                        "host": "127.0.0.1",
                        "port": mosquitto.port,
                        "username": "env:KZ_WITNESS_USER",
                        "password": "env:KZ_WITNESS_PASS",
                    },
                    {"type": "webhook", "url": hook.url, "secret": "env:KZ_WITNESS_HOOK"},
                ]
            }
        }
    )
    monkeypatch.setenv("KZ_WITNESS_USER", mosquitto.user)
    svc = Kuzet(tmp_path / "data", config)
    admin = svc.init_admin("admin", PASSWORD)
    svc.add_user(admin, "auditor", PASSWORD, ["auditor"])
    svc.close()  # delivers what is queued
    reader = Kuzet(tmp_path / "data")
    with reader.db.read() as s:
        newest = AuditLedger(s).latest_checkpoint()
    reader.close()
    assert newest is not None

    retained: list[bytes] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.username_pw_set(mosquitto.user, mosquitto.password)
    sub.on_message = lambda c, u, m: retained.append(m.payload) if m.retain else None
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("kuzet/audit/checkpoint", qos=1)
    sub.loop_start()
    try:
        wait_until(lambda: bool(retained), 10, "the retained checkpoint")
    finally:
        sub.loop_stop()
        sub.disconnect()
    held = TrustedCheckpoint.from_json(json.loads(retained[-1]), label="mqtt")
    assert held.signature_ok() and held.to_json() == newest.signed_json()  # a new subscriber gets the newest one

    sizes = []
    for headers, body in hook.received:
        assert verify_signature("witness-hook-key", headers["x-kuzet-timestamp"], body, headers["x-kuzet-signature"])
        data = json.loads(body)
        assert data["kind"] == "checkpoint"
        cp = TrustedCheckpoint.from_json(data["data"], label="webhook")
        assert cp.signature_ok()
        sizes.append(cp.tree_size)
    assert sizes == sorted(sizes) and sizes[-1] == newest.tree_size  # every one, in order
    assert len(sizes) == newest.checkpoint_id

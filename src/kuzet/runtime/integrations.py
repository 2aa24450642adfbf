"""Where `kuzet run` sends what it stores: an MQTT broker and signed webhooks.

Topics (under `run.mqtt.topic_prefix`, default `kuzet`), JSON payloads:

| topic | retained | payload |
|---|---|---|
| `kuzet/status` | yes | `online` / `offline` (the broker publishes `offline` if kuzet vanishes) |
| `kuzet/cameras/CAMERA/status` | yes | camera state, reason, since, frames analysed, reconnects |
| `kuzet/events/CAMERA` | no | a match against the consented gallery |
| `kuzet/alerts/CAMERA` | no | a candidate watchlist alert awaiting review (never names anyone) |
| `kuzet/passages/CAMERA` | no | a vehicle or person crossing a counting line |
| `kuzet/violations/CAMERA` | no | a traffic violation with its evidence hash |

Webhooks POST `{"kind": ..., "camera": ..., "data": {...}}` with `X-Kuzet-Timestamp`, `X-Kuzet-Delivery` and
`X-Kuzet-Signature: sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` under the webhook's secret (`verify_signature`).

Events, alerts, passages and violations come from the outbox (`runtime.outbox`): stored with the decision, delivered
at least once, each with its delivery id (the MQTT payload's `delivery`, the webhook's `X-Kuzet-Delivery`), the same
on every attempt and after a restart, for receivers to drop repeats. Camera states are sent as they change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kuzet.config.models import MqttConfig, WebhookConfig
from kuzet.config.secrets import Secrets
from kuzet.core.signatures import sign, signed_headers, verify_signature
from kuzet.core.types import JsonValue
from kuzet.store.repositories.outbox import OutboxItem

if TYPE_CHECKING:
    from paho.mqtt.client import MQTTMessageInfo as MessageInfo

log = logging.getLogger("kuzet.run")
__all__ = ["Integrations", "JsonValue", "MqttPublisher", "Notice", "WebhookSender", "sign", "verify_signature"]

PERSONAL_FIELDS = {"identity": "include_identity", "plate": "include_plates"}
"""Payload fields an integration sends only when its config says so."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something stored (or a camera state change) that integrations may announce."""

    kind: str
    """event | alert | passage | violation | camera"""
    camera: str
    data: dict[str, JsonValue]


def _visible(notice: Notice, *, include_identity: bool, include_plates: bool) -> dict[str, JsonValue]:
    allowed = {"include_identity": include_identity, "include_plates": include_plates}
    return {k: v for k, v in notice.data.items() if k not in PERSONAL_FIELDS or allowed[PERSONAL_FIELDS[k]]}


class MqttPublisher:
    """One MQTT connection (paho), reconnecting by itself; publications wait in its queue while disconnected."""

    def __init__(self, config: MqttConfig, secrets: Secrets) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.config = config
        self.key = "mqtt"
        """The outbox destination this publisher is."""
        self.published = 0
        self.connected = False
        self._resend_from: int | None = None
        self._inflight: list[tuple[int, MessageInfo]] = []
        self._tracked: set[int] = set()
        """Message ids of stored notices in flight."""
        self._acked: set[int] = set()
        """Those the broker acknowledged (added from the client's network thread)."""
        self._lock = threading.RLock()
        self._prefix = config.topic_prefix.rstrip("/")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id)
        user = secrets.optional(config.username, what="run.mqtt.username")
        password = secrets.optional(config.password, what="run.mqtt.password")
        if user is not None:
            client.username_pw_set(user, password)
        if config.tls:
            client.tls_set(ca_certs=config.ca_file)
        client.will_set(f"{self._prefix}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(10_000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        client.connect_async(config.host, config.port, keepalive=30)
        client.loop_start()

    def _on_connect(self, client: object, userdata: object, flags: object, reason: object, props: object) -> None:
        self.connected = not getattr(reason, "is_failure", False)
        if self.connected:
            self._client.publish(f"{self._prefix}/status", "online", qos=1, retain=True)
        else:
            log.warning("MQTT broker %s:%s refused the connection: %s", self.config.host, self.config.port, reason)

    def _on_disconnect(self, client: object, userdata: object, flags: object, reason: object, props: object) -> None:
        self.connected = False

    def _on_publish(self, client: object, userdata: object, mid: int, reason: object, props: object) -> None:
        self.published += 1
        with self._lock:
            if mid in self._tracked:  # a stored notice (camera states are not tracked)
                self._acked.add(mid)  # the broker acknowledged it (at QoS 0: it was sent)

    def topic(self, notice: Notice) -> str:
        """The topic a notice goes to."""
        if notice.kind == "camera":
            return f"{self._prefix}/cameras/{notice.camera}/status"
        return f"{self._prefix}/{notice.kind}s/{notice.camera}"

    def publish(self, notice: Notice, *, delivery: str = "") -> MessageInfo:
        """Queue one notice for the broker (camera states are retained: a new subscriber sees the current one)."""
        data = _visible(
            notice, include_identity=self.config.include_identity, include_plates=self.config.include_plates
        )
        body: dict[str, JsonValue] = {"kind": notice.kind, "camera": notice.camera, "data": data}
        if delivery:
            body["delivery"] = delivery
        payload = json.dumps(body, sort_keys=True)
        info: MessageInfo = self._client.publish(
            self.topic(notice), payload, qos=self.config.qos, retain=notice.kind == "camera"
        )
        return info

    def offer(self, item: OutboxItem) -> None:
        """Publish a stored notice; it counts as received once the broker acknowledged it (at QoS 0: once sent)."""
        with self._lock:  # the acknowledgement may arrive before publish returns
            info = self.publish(Notice(item.kind, item.camera, item.data), delivery=item.delivery_id)
            self._inflight.append((item.id, info))
            self._tracked.add(info.mid)

    def received_upto(self) -> int | None:
        """The outbox id up to which the broker has everything offered (None: no progress since last asked).

        A publication the client could not queue (not connected at QoS 0) is offered again: see `rewind`.
        """
        import paho.mqtt.client as mqtt

        done: int | None = None
        with self._lock:
            while self._inflight:
                item_id, info = self._inflight[0]
                if info.mid in self._acked:
                    self._acked.discard(info.mid)
                    self._tracked.discard(info.mid)
                    done = item_id
                    self._inflight.pop(0)
                    continue
                # Not connected: at QoS 1 and 2 the client keeps the message and sends it on reconnecting (pending);
                # at QoS 0, or when its queue is full, the message is gone and is offered again.
                lost = info.rc == mqtt.MQTT_ERR_QUEUE_SIZE or (
                    info.rc != mqtt.MQTT_ERR_SUCCESS and self.config.qos == 0
                )
                if lost:
                    self._resend_from = done if done is not None else item_id - 1
                    self._acked.clear()
                    self._tracked.clear()
                    self._inflight.clear()
                break
        return done

    def in_flight(self) -> int:
        """Stored notices offered and not yet acknowledged."""
        return len(self._inflight)

    def rewind(self) -> int | None:
        """The outbox id to offer again after, when publications were refused (else None)."""
        where, self._resend_from = self._resend_from, None
        return where

    def close(self) -> None:
        """Say `offline`, flush and disconnect."""
        try:
            info = self._client.publish(f"{self._prefix}/status", "offline", qos=1, retain=True)
            if self.connected:
                info.wait_for_publish(timeout=3)
        except (ValueError, RuntimeError) as exc:  # the queue is full or the broker just went away
            log.warning("MQTT: could not say offline: %s", exc)
        finally:
            self._client.disconnect()
            self._client.loop_stop()


@dataclass(frozen=True, slots=True)
class _Delivery:
    notice: Notice
    outbox_id: int | None
    """The outbox row (None for a camera state, which is not stored)."""
    delivery: str


class WebhookSender:
    """Delivers notices to one endpoint in order, from its own thread, retrying with backoff until it answers."""

    def __init__(
        self,
        config: WebhookConfig,
        secrets: Secrets,
        *,
        max_queue: int = 10_000,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        import httpx

        self.config = config
        parts = urlsplit(config.url)
        self.label = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        """The endpoint without path or query (which may carry tokens): what logs show."""
        self.key = "webhook:" + hashlib.sha256(config.url.encode()).hexdigest()[:16]
        """The outbox destination this endpoint is (its whole URL, hashed: the URL itself may hold a token)."""
        self._secret = secrets.resolve(config.secret, what=f"webhook {self.label} secret")
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.done_upto = 0
        """The outbox id up to which every stored notice was delivered (or given up on after max_attempts)."""
        self._reported = 0
        self._max_queue = max_queue
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._http = httpx.Client(timeout=config.timeout_s, follow_redirects=False)
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._thread = threading.Thread(target=self._run, name=f"webhook:{self.label}", daemon=True)
        self._thread.start()

    def send(self, notice: Notice) -> None:
        """Queue a notice that is not stored (a camera state) if this webhook wants its kind.

        When `max_queue` notices wait already (the endpoint is down), it is dropped and counted: stored notices are
        never dropped, they wait in the outbox.
        """
        if notice.kind not in self.config.kinds:
            return
        if self._queue.qsize() >= self._max_queue:
            self.dropped += 1
            return
        self._queue.put(_Delivery(notice, None, uuid.uuid4().hex))

    def offer(self, item: OutboxItem) -> None:
        """Queue a stored notice (one of a kind this webhook does not want is passed over, in order)."""
        self._queue.put(_Delivery(Notice(item.kind, item.camera, item.data), item.id, item.delivery_id))

    def received_upto(self) -> int | None:
        """The outbox id up to which everything offered was delivered (None: no progress since last asked)."""
        done = self.done_upto
        if done == self._reported:
            return None
        self._reported = done
        return done

    def in_flight(self) -> int:
        """Notices queued and not yet delivered."""
        return self._queue.qsize()

    def rewind(self) -> int | None:
        """Never: what is queued is delivered or given up on in order."""
        return None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if item.notice.kind in self.config.kinds and not self._deliver(item.notice, item.delivery):
                return  # closing mid-retry: this one and the rest stay in the outbox for the next start
            if item.outbox_id is not None:
                self.done_upto = item.outbox_id

    def _deliver(self, notice: Notice, delivery: str) -> bool:
        """Deliver with retries; False when closing interrupted it (it was neither delivered nor given up on)."""
        import httpx

        data = _visible(
            notice, include_identity=self.config.include_identity, include_plates=self.config.include_plates
        )
        body = json.dumps({"kind": notice.kind, "camera": notice.camera, "data": data}, sort_keys=True).encode()
        for attempt in range(self.config.max_attempts):
            if attempt:
                delay = min(60.0, 0.5 * 2 ** (attempt - 1)) * (1 - 0.3 * random.random())
                self._sleep(delay)
                if self._stopping.is_set():
                    return False
            headers = signed_headers(self._secret, body, kind=notice.kind, delivery=delivery)
            try:
                response = self._http.post(self.config.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("webhook %s attempt %d failed: %s", self.label, attempt + 1, type(exc).__name__)
                continue
            if response.status_code < 300:
                self.delivered += 1
                return True
            if response.status_code not in (408, 425, 429) and response.status_code < 500:
                log.warning("webhook %s refused delivery %s: HTTP %d", self.label, delivery, response.status_code)
                break  # the endpoint says the request is wrong: retrying cannot help
        self.failed += 1
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout` seconds), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stopping.set()
        self._thread.join(1.0)
        self._http.close()


class Integrations:
    """Every configured destination; `send` fans a notice out to all of them."""

    def __init__(self, mqtt: MqttPublisher | None, webhooks: list[WebhookSender]) -> None:
        self.mqtt = mqtt
        self.webhooks = webhooks

    @classmethod
    def from_config(cls, mqtt: MqttConfig | None, webhooks: list[WebhookConfig], secrets: Secrets) -> Integrations:
        """Connect what the config names (secrets resolved now: a missing one fails before any camera starts)."""
        senders = [WebhookSender(w, secrets) for w in webhooks]
        return cls(MqttPublisher(mqtt, secrets) if mqtt is not None else None, senders)

    def destinations(self) -> list[MqttPublisher | WebhookSender]:
        """Where stored notices go (each with its own cursor in the outbox)."""
        return [*([self.mqtt] if self.mqtt is not None else []), *self.webhooks]

    def send(self, notice: Notice) -> None:
        """Publish to MQTT and queue for every webhook that wants it."""
        if self.mqtt is not None:
            self.mqtt.publish(notice)
        for w in self.webhooks:
            w.send(notice)

    def close(self) -> None:
        """Flush and disconnect everything."""
        for w in self.webhooks:
            w.close()
        if self.mqtt is not None:
            self.mqtt.close()

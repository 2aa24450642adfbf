"""HMAC signatures of JSON bodies sent to webhooks (events and ledger checkpoints alike)."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Kuzet-Signature` value for a body sent at `timestamp` (Unix seconds as text)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300.0, now: float | None = None
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (replays are refused)."""
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def signed_headers(secret: str, body: bytes, *, kind: str, delivery: str) -> dict[str, str]:
    """The headers of one signed POST of `body`."""
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "kuzet-webhook/1",
        "X-Kuzet-Event": kind,
        "X-Kuzet-Delivery": delivery,
        "X-Kuzet-Timestamp": ts,
        "X-Kuzet-Signature": sign(secret, ts, body),
    }

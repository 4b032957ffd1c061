"""Replication events (schema v2) seen from outside: read, open and seal envelopes the way a
holder of the replication key (or an attacker without it) would. Mirrors
crates/replication/src/event.rs and crates/wire/src/{seal,hash}.rs; see
docs/replication-events.md.

Used by the end-to-end tests to copy genuine events off a queue, re-send them, and to build
forged or foreign ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

EVENT_PURPOSE = "cognito-relay/replication-event/v2"
HEADER_FIELDS = ("v", "id", "origin_region", "origin_pool", "target_pool", "action", "group", "origin_time_ms")


def group_of(user_key: str) -> str:
    """The FIFO group (and envelope `group`) of a user key."""
    return hashlib.sha256(user_key.lower().encode()).hexdigest()[:32]


def derive_key(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, purpose.encode(), hashlib.sha256).digest()


def _aad(header: dict[str, Any]) -> bytes:
    fields = [EVENT_PURPOSE, header["id"], header["origin_region"], header["origin_pool"], header["target_pool"],
              header["action"], header["group"], str(header["origin_time_ms"])]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def _b64url_nopad(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def seal(key: bytes, kid: str, plaintext: bytes, aad: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return f"v1.{kid}.{_b64url_nopad(nonce + AESGCM(key).encrypt(nonce, plaintext, aad))}"


def open_sealed(key: bytes, sealed: str, aad: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    _v, _kid, body = sealed.split(".", 2)
    blob = _b64url_decode(body)
    return AESGCM(key).decrypt(blob[:12], blob[12:], aad)


def header_of(body: str) -> dict[str, Any]:
    doc = json.loads(body)
    return {k: doc[k] for k in HEADER_FIELDS}


def open_event(body: str, master_b64: str) -> dict[str, Any]:
    """The sealed event inside a queued body (raises if it does not verify)."""
    doc = json.loads(body)
    key = derive_key(base64.b64decode(master_b64), EVENT_PURPOSE)
    return json.loads(open_sealed(key, doc["sealed"], _aad(doc)))


def seal_event(event: dict[str, Any], master_b64: str, kid: str = "k1") -> str:
    """A queue body for `event` (schema v2 fields, `user_key` included), sealed as the proxy does."""
    header = {
        "v": event["v"], "id": event["id"], "origin_region": event["origin_region"], "origin_pool": event["origin_pool"],
        "target_pool": event["target_pool"], "action": event["action"], "group": group_of(event["user_key"]),
        "origin_time_ms": event["origin_time_ms"],
    }
    key = derive_key(base64.b64decode(master_b64), EVENT_PURPOSE)
    sealed = seal(key, kid, json.dumps(event, separators=(",", ":")).encode(), _aad(header))
    return json.dumps({**header, "sealed": sealed}, separators=(",", ":"))


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus counter's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        rest = head[len(name):]
        if rest and not rest.startswith("{"):
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total

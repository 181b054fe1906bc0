"""Delivery signatures: HMAC-SHA256 over `<timestamp>.<body>` with the
subscription's secret, so receivers can check origin and reject replays."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Orderdesk-Signature"
TIMESTAMP_HEADER = "Orderdesk-Timestamp"
EVENT_ID_HEADER = "Orderdesk-Event-Id"
EVENT_TYPE_HEADER = "Orderdesk-Event-Type"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """For receivers (and tests): constant-time comparison of the v1 signature."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)

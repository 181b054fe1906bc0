"""Stripe's webhook signatures, checked without the SDK.

`Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where each `v1` is
HMAC-SHA256 keyed with the whole `whsec_…` secret (not decoded) over
`"<t>." + raw body`. Other elements (`v0`, anything new) are ignored. Unlike the
SDK, a timestamp too far in the *future* is refused as well as an old one: a
signed body with a future `t` would otherwise stay replayable for that long.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from orderdesk.payments.gateway import InvalidSignature

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300
SCHEME = "v1"


def signature(body: bytes, secret: str, timestamp: int) -> str:
    """The hex `v1` signature of `body` signed at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def sign(body: bytes, secret: str | Sequence[str], timestamp: int) -> str:
    """A `Stripe-Signature` header value; several secrets give one `v1` each, as
    Stripe sends during a secret's rotation."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return ",".join(
        [f"t={timestamp}", *(f"{SCHEME}={signature(body, s, timestamp)}" for s in secrets)]
    )


def verify(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Returns the signed timestamp when some `v1` matches `body` under any of
    `secrets` and the timestamp is within `tolerance` of `now` either way; raises
    `InvalidSignature` otherwise."""
    if not secrets:
        raise InvalidSignature("no webhook secret is configured")
    timestamp, candidates = _parse(header)
    age = now - timestamp
    if age > tolerance:
        raise InvalidSignature(f"timestamp is {age:.0f} s old (tolerance {tolerance} s)")
    if -age > tolerance:
        raise InvalidSignature(f"timestamp is {-age:.0f} s in the future")
    expected = [signature(body, secret, timestamp) for secret in secrets]
    # Every pair is compared, so the time taken says nothing about which one matched.
    matched = False
    for candidate in candidates:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate.encode(), wanted.encode())
    if not matched:
        raise InvalidSignature("no v1 signature matches the body")
    return timestamp


def _parse(header: str | None) -> tuple[int, list[str]]:
    if not header or not header.strip():
        raise InvalidSignature(f"the {SIGNATURE_HEADER} header is missing")
    timestamps: list[str] = []
    candidates: list[str] = []
    for element in header.split(","):
        name, sep, value = element.strip().partition("=")
        if not sep:
            continue  # not an element; ignored like any unknown one
        if name == "t":
            timestamps.append(value.strip())
        elif name == SCHEME:
            candidates.append(value.strip())
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise InvalidSignature(f"the {SIGNATURE_HEADER} header has no single valid timestamp")
    if not candidates:
        raise InvalidSignature(f"the {SIGNATURE_HEADER} header has no {SCHEME} signature")
    return int(timestamps[0]), candidates

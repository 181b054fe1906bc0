"""Stripe's idempotency rules, per (API key, `Idempotency-Key`).

- The first request's answer is saved once execution has begun, whatever it was
  (a decline, a 400 about the intent's state, a 500 from `error_after`), and
  replayed byte for byte for `ttl` seconds with `Idempotent-Replayed: true` and
  `Original-Request: <first Request-Id>`.
- Nothing is saved when the parameters fail validation or the key is busy: the
  claim is released, and the same key may be used again.
- Another endpoint or other parameters under a live key: 400 `idempotency_error`.
- The same key while its first request still runs: 409 `idempotency_key_in_use`.

Everything here is synchronous, so on the one event loop a lookup and its claim
happen with no other request in between.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from orderdesk.sandbox import errors
from orderdesk.sandbox.clock import SandboxClock

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class SavedResponse:
    status: int
    body: bytes
    request_id: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Claim:
    api_key: str
    key: str


@dataclass(slots=True)
class _Record:
    endpoint: str
    fingerprint: str
    created: float
    response: SavedResponse | None = None


class IdempotencyStore:
    def __init__(self, clock: SandboxClock, *, ttl_seconds: float) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        # Insertion order is creation order (the clock only moves forward), so
        # expired records are always at the front.
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    def begin(
        self, api_key: str, key: str, *, endpoint: str, fingerprint: str
    ) -> Claim | SavedResponse:
        """Claim `key` for a new execution, or the saved answer to replay; raises
        the 400/409 a reused key gets."""
        if len(key) > MAX_KEY_LENGTH:
            raise errors.idempotency_key_too_long()
        self._prune()
        record = self._records.get((api_key, key))
        if record is not None and self._expired(record):
            del self._records[(api_key, key)]
            record = None
        if record is None:
            self._records[(api_key, key)] = _Record(endpoint, fingerprint, self._clock.now())
            return Claim(api_key, key)
        if record.response is None:
            raise errors.idempotency_key_in_use(key)
        if record.endpoint != endpoint or record.fingerprint != fingerprint:
            raise errors.idempotency_mismatch(key)
        return record.response

    def finish(self, claim: Claim, response: SavedResponse) -> None:
        record = self._records.get((claim.api_key, claim.key))
        if record is not None:
            record.response = response

    def release(self, claim: Claim) -> None:
        """Forget a claim whose request was refused before execution began."""
        record = self._records.get((claim.api_key, claim.key))
        if record is not None and record.response is None:
            del self._records[(claim.api_key, claim.key)]

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def _expired(self, record: _Record) -> bool:
        return record.response is not None and self._clock.now() - record.created >= self._ttl

    def _prune(self) -> None:
        while self._records:
            first_key = next(iter(self._records))
            record = self._records[first_key]
            if not self._expired(record):
                return
            del self._records[first_key]

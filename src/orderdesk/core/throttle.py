"""Failure counters for sign-in throttling, in process or shared through Redis.

Each counter is a fixed window that opens at the first failure and lasts
`window_seconds`; once a counter reaches its limit, attempts under that key are
refused with 429 and `Retry-After` until the window closes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from orderdesk.core.errors import TooManyRequests
from orderdesk.core.settings import Settings


class FailureCounter(Protocol):
    async def count(self, key: str) -> tuple[int, int]:
        """The failures under `key` and the seconds until its window closes."""
        ...

    async def increment(self, key: str, *, window_seconds: int) -> None: ...

    async def reset(self, key: str) -> None: ...


class MemoryFailureCounter:
    """Per-process counters: right for one server process (the MVP tier)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}

    async def count(self, key: str) -> tuple[int, int]:
        failures, closes_at = self._windows.get(key, (0, 0.0))
        remaining = closes_at - time.monotonic()
        if remaining <= 0:
            self._windows.pop(key, None)
            return 0, 0
        return failures, int(remaining + 0.999)

    async def increment(self, key: str, *, window_seconds: int) -> None:
        failures, _ = await self.count(key)
        closes_at = self._windows.get(key, (0, time.monotonic() + window_seconds))[1]
        self._windows[key] = (failures + 1, closes_at)
        if len(self._windows) > 100_000:
            self._evict_closed()

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    def _evict_closed(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, closes_at) in self._windows.items() if closes_at <= now]:
            del self._windows[key]


class RedisFailureCounter:
    """Counters shared by every server process through Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def count(self, key: str) -> tuple[int, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw, ttl_ms = await pipe.execute()
        if raw is None or ttl_ms is None or ttl_ms <= 0:
            return 0, 0
        return int(raw), (int(ttl_ms) + 999) // 1000

    async def increment(self, key: str, *, window_seconds: int) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds, nx=True)
            await pipe.execute()

    async def reset(self, key: str) -> None:
        await self._redis.delete(key)


@dataclass(frozen=True, slots=True)
class SigninThrottle:
    """Limits failed sign-ins per account and per client address.

    The account counter is keyed by account *and* address: failures an attacker
    causes from elsewhere never lock the real user out from their own address, and
    each window ends by itself. The address counter caps one client's guesses across
    all accounts (password spraying).
    """

    counter: FailureCounter
    window_seconds: int
    max_per_account: int
    max_per_address: int

    @classmethod
    def from_settings(cls, settings: Settings, counter: FailureCounter) -> SigninThrottle:
        return cls(
            counter=counter,
            window_seconds=settings.signin_window_seconds,
            max_per_account=settings.signin_max_failures_per_account,
            max_per_address=settings.signin_max_failures_per_address,
        )

    async def check(self, *, account: str, address: str) -> None:
        for key, limit in self._keys(account, address):
            failures, retry_after = await self.counter.count(key)
            if failures >= limit:
                raise TooManyRequests(
                    "Too many failed sign-in attempts; try again later.", retry_after=retry_after
                )

    async def record_failure(self, *, account: str, address: str) -> None:
        for key, _ in self._keys(account, address):
            await self.counter.increment(key, window_seconds=self.window_seconds)

    async def record_success(self, *, account: str, address: str) -> None:
        await self.counter.reset(self._account_key(account, address))

    def _keys(self, account: str, address: str) -> list[tuple[str, int]]:
        return [
            (self._account_key(account, address), self.max_per_account),
            (f"orderdesk:signin:addr:{address}", self.max_per_address),
        ]

    @staticmethod
    def _account_key(account: str, address: str) -> str:
        # Hashed so the shared store never holds email addresses.
        digest = hashlib.sha256(account.encode()).hexdigest()[:32]
        return f"orderdesk:signin:acct:{digest}:{address}"

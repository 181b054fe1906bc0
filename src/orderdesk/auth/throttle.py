"""Fixed-window counters, in process or shared through Redis, and the throttles
built on them: failed sign-ins, and every attempt at an action that sends mail or
costs a password hash (sign-up, password reset, verification re-send).

Each counter is a fixed window that opens at the first count and lasts
`window_seconds`; once a counter reaches its limit, attempts under that key are
refused with 429 and `Retry-After` until the window closes.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from orderdesk.core.errors import TooManyRequests
from orderdesk.core.settings import Settings


class WindowCounter(Protocol):
    async def count(self, key: str) -> tuple[int, int]:
        """The count under `key` and the seconds until its window closes."""
        ...

    async def increment(self, key: str, *, window_seconds: int) -> None: ...

    async def hit(self, key: str, *, window_seconds: int) -> tuple[int, int]:
        """Count one more under `key`, atomically: the count including this one and
        the seconds until its window closes. Concurrent hits never share a count."""
        ...

    async def reset(self, key: str) -> None: ...


# Windows one process keeps (about 150 bytes each). Past it, the oldest open windows
# are forgotten: an exposed deployment shares its counters through Redis instead.
MEMORY_COUNTER_MAX_WINDOWS = 100_000


class MemoryFailureCounter:
    """Per-process counters: right for one server process (the MVP tier). `now` is
    a monotonic clock in seconds, replaceable so tests can move time."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._now = now

    async def count(self, key: str) -> tuple[int, int]:
        counted, closes_at = self._open_window(key)
        return counted, self._seconds_until(closes_at) if counted else 0

    async def increment(self, key: str, *, window_seconds: int) -> None:
        await self.hit(key, window_seconds=window_seconds)

    async def hit(self, key: str, *, window_seconds: int) -> tuple[int, int]:
        # No await between reading and writing: atomic within the event loop.
        counted, closes_at = self._open_window(key)
        if not counted:
            closes_at = self._now() + window_seconds
        self._windows[key] = (counted + 1, closes_at)
        if len(self._windows) > MEMORY_COUNTER_MAX_WINDOWS:
            self._evict()
        return counted + 1, self._seconds_until(closes_at)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    def _open_window(self, key: str) -> tuple[int, float]:
        counted, closes_at = self._windows.get(key, (0, 0.0))
        if closes_at <= self._now():
            self._windows.pop(key, None)
            return 0, 0.0
        return counted, closes_at

    def _seconds_until(self, closes_at: float) -> int:
        return max(1, int(closes_at - self._now() + 0.999))

    def _evict(self) -> None:
        """Closed windows go first; if open ones still fill the table (many distinct
        targets or addresses), the oldest are forgotten. Down to 90 %, so the scan runs
        once per ten thousand new keys, not on every hit."""
        now = self._now()
        for key in [k for k, (_, closes_at) in self._windows.items() if closes_at <= now]:
            del self._windows[key]
        excess = len(self._windows) - MEMORY_COUNTER_MAX_WINDOWS * 9 // 10
        if excess > 0:
            for key in list(itertools.islice(self._windows, excess)):  # oldest first
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
        await self.hit(key, window_seconds=window_seconds)

    async def hit(self, key: str, *, window_seconds: int) -> tuple[int, int]:
        # MULTI/EXEC: the count is INCR's own answer, so concurrent hits from any
        # number of processes each get a distinct count.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds, nx=True)
            pipe.pttl(key)
            counted, _, ttl_ms = await pipe.execute()
        retry_after = (int(ttl_ms) + 999) // 1000 if ttl_ms and ttl_ms > 0 else window_seconds
        return int(counted), max(1, retry_after)

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

    counter: WindowCounter
    window_seconds: int
    max_per_account: int
    max_per_address: int

    @classmethod
    def from_settings(cls, settings: Settings, counter: WindowCounter) -> SigninThrottle:
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
        return f"orderdesk:signin:acct:{_digest(account)}:{address}"


def _digest(value: str) -> str:
    # Hashed so the shared store never holds email addresses.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ActionThrottle:
    """Limits attempts at one action per target (an email or an account) and per
    client address, in fixed windows. Every attempt counts, successful or not: the
    cost (a hash, a message) is paid either way.

    The address is counted first, and an attempt it refuses is not counted against
    the target, so one noisy client cannot use up a target's allowance by being
    refused; the target counter is what stops many addresses aiming at one inbox.
    """

    counter: WindowCounter
    action: str
    window_seconds: int
    max_per_target: int
    max_per_address: int
    refusal: str

    async def admit(self, *, target: str, address: str) -> int | None:
        """Count this attempt: None if it may go ahead, otherwise the seconds until
        one would be allowed again."""
        for key, limit in self._limits(target, address):
            counted, retry_after = await self.counter.hit(key, window_seconds=self.window_seconds)
            if counted > limit:
                return retry_after
        return None

    async def enforce(self, *, target: str, address: str) -> None:
        """Count this attempt, or refuse it with 429 and `Retry-After`."""
        retry_after = await self.admit(target=target, address=address)
        if retry_after is not None:
            raise TooManyRequests(self.refusal, retry_after=retry_after)

    def keys(self, *, target: str, address: str) -> list[str]:
        return [key for key, _ in self._limits(target, address)]

    def _limits(self, target: str, address: str) -> list[tuple[str, int]]:
        return [
            (f"orderdesk:{self.action}:addr:{address}", self.max_per_address),
            (f"orderdesk:{self.action}:target:{_digest(target)}", self.max_per_target),
        ]


@dataclass(frozen=True, slots=True)
class ActionLimits:
    """The throttles for actions that send mail or cost a password hash."""

    signup: ActionThrottle
    password_reset: ActionThrottle
    verification_resend: ActionThrottle

    @classmethod
    def from_settings(cls, settings: Settings, counter: WindowCounter) -> ActionLimits:
        s = settings
        return cls(
            signup=ActionThrottle(
                counter=counter,
                action="signup",
                window_seconds=s.signup_window_seconds,
                max_per_target=s.signup_max_per_email,
                max_per_address=s.signup_max_per_address,
                refusal="Too many sign-ups; try again later.",
            ),
            password_reset=ActionThrottle(
                counter=counter,
                action="reset",
                window_seconds=s.password_reset_window_seconds,
                max_per_target=s.password_reset_max_per_account,
                max_per_address=s.password_reset_max_per_address,
                refusal="Too many password reset requests; try again later.",
            ),
            verification_resend=ActionThrottle(
                counter=counter,
                action="verify-resend",
                window_seconds=s.verification_resend_window_seconds,
                max_per_target=s.verification_resend_max_per_account,
                max_per_address=s.verification_resend_max_per_address,
                refusal="Too many verification messages requested; try again later.",
            ),
        )

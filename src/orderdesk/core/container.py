"""The adapters a process needs, chosen once from settings.

This is the one place where tiers differ: which database, whether throttling state
(sign-in failures, sign-ups, resets, verification re-sends) is shared through Redis,
which mailer. Requests, jobs and CLI commands all build the same container, so
services behave the same whichever way they are reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from orderdesk.core.clock import Clock, SystemClock
from orderdesk.core.database import Database
from orderdesk.core.security import PasswordHasher, TokenCodec
from orderdesk.core.settings import Settings
from orderdesk.core.throttle import (
    ActionLimits,
    MemoryFailureCounter,
    RedisFailureCounter,
    SigninThrottle,
)
from orderdesk.notifications.mailer import Mailer, mailer_from_url


def outbound_http_client() -> httpx.AsyncClient:
    """One pooled client per process for calls to the outside (webhooks, later the
    payment gateway); per-call timeouts are set by each caller."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        trust_env=False,
    )


@dataclass(frozen=True, slots=True)
class Container:
    settings: Settings
    database: Database
    clock: Clock
    hasher: PasswordHasher
    tokens: TokenCodec
    throttle: SigninThrottle
    limits: ActionLimits
    mailer: Mailer
    redis: Redis | None
    http: httpx.AsyncClient

    @classmethod
    def from_settings(cls, settings: Settings) -> Container:
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        counter = RedisFailureCounter(redis) if redis else MemoryFailureCounter()
        return cls(
            settings=settings,
            database=Database.from_settings(settings),
            clock=SystemClock(),
            hasher=PasswordHasher.from_settings(settings),
            tokens=TokenCodec(settings),
            throttle=SigninThrottle.from_settings(settings, counter),
            limits=ActionLimits.from_settings(settings, counter),
            mailer=mailer_from_url(settings.smtp_url),
            redis=redis,
            http=outbound_http_client(),
        )

    async def close(self) -> None:
        await self.database.dispose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.http.aclose()

"""The adapters a process holds: what services, handlers and routes reach the
outside through. `orderdesk.bootstrap` builds one from settings; requests, handlers
and CLI commands all use the same container, so services behave the same whichever
way they are reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends
from redis.asyncio import Redis

from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import ActionLimits, SigninThrottle
from orderdesk.auth.tokens import TokenCodec
from orderdesk.core.clock import Clock
from orderdesk.core.database import Database
from orderdesk.core.deps import get_adapters
from orderdesk.core.settings import Settings
from orderdesk.notifications.mailer import Mailer
from orderdesk.payments.gateway import PaymentGateway


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
    payments: PaymentGateway

    async def close(self) -> None:
        await self.payments.close()
        await self.database.dispose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.http.aclose()


# The same dependency callable as `core.deps.AdaptersDep`, so FastAPI resolves the
# container once per request whichever of the two annotations a route uses: the
# core sees it through its `Adapters` protocol, everything above as the container.
ContainerDep = Annotated[Container, Depends(get_adapters)]

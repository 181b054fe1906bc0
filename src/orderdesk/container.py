"""The adapters a process holds: what services, handlers and routes reach the
outside through. `orderdesk.bootstrap` builds one from settings; requests, handlers
and CLI commands all use the same container, so services behave the same whichever
way they are reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from redis.asyncio import Redis

from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import ActionLimits, SigninThrottle
from orderdesk.auth.tokens import TokenCodec
from orderdesk.core.clock import Clock
from orderdesk.core.database import Database
from orderdesk.core.errors import ServiceUnavailable
from orderdesk.core.openapi import problems
from orderdesk.core.settings import Settings
from orderdesk.notifications.mailer import Mailer


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

    async def close(self) -> None:
        await self.database.dispose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.http.aclose()


# Dependencies are `async def` even when they do not await: FastAPI runs plain
# functions in a worker thread, a hop per request for nothing.
@problems(ServiceUnavailable)  # whatever reaches the services may find one down
async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]

"""Request-scoped dependencies shared by every domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Protocol
from uuid import UUID

from fastapi import Depends, Query, Request

from orderdesk.core.clock import Clock
from orderdesk.core.database import Database
from orderdesk.core.errors import ConcurrentUpdate, ServiceUnavailable
from orderdesk.core.openapi import problems
from orderdesk.core.pagination import MAX_CURSOR_LENGTH, MAX_LIMIT
from orderdesk.core.reads import PrimaryReads, ReplicaReads
from orderdesk.core.text import SingleLineText
from orderdesk.core.uow import UnitOfWork, unit_of_work


class Adapters(Protocol):
    """What these dependencies need of the process's container (built above `core`,
    by `orderdesk.bootstrap`, and kept on `app.state.container`)."""

    @property
    def database(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...


# Dependencies are `async def` even when they do not await: FastAPI runs plain
# functions in a worker thread, a hop per request for nothing.
@problems(ServiceUnavailable)  # whatever reaches the services may find one down
async def get_adapters(request: Request) -> Adapters:
    adapters: Adapters = request.app.state.container
    return adapters


AdaptersDep = Annotated[Adapters, Depends(get_adapters)]


@problems(ConcurrentUpdate)  # a version-guarded write that lost a race, at flush
async def get_unit_of_work(request: Request, c: AdaptersDep) -> AsyncIterator[UnitOfWork]:
    async with unit_of_work(c.database, clock=c.clock, request_id=request.state.request_id) as uow:
        uow.actor_id = getattr(request.state, "user_id", None)
        request.state.unit_of_work = uow
        yield uow


def bind_actor(request: Request, user_id: UUID) -> None:
    """Record who the request acts for: in the access log, and as the author of
    what its unit of work writes (whichever of the two dependencies ran first)."""
    request.state.user_id = user_id
    uow: UnitOfWork | None = getattr(request.state, "unit_of_work", None)
    if uow is not None:
        uow.actor_id = user_id


# scope="function": the transaction commits (or rolls back) when the route returns,
# *before* the response is sent, so a client never sees success for a failed commit.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


# The read kinds are handles: a service opens a connection (or session) for the span
# of its reads and gives it back, so these need no teardown and a request holds at
# most one pooled connection at a time (see `core.reads`). A route takes the unit of
# work or one of these, never two.
async def get_primary_reads(c: AdaptersDep) -> PrimaryReads:
    return c.database.primary_reads()


PrimaryReadsDep = Annotated[PrimaryReads, Depends(get_primary_reads)]


async def get_replica_reads(c: AdaptersDep) -> ReplicaReads:
    return c.database.replica_reads()


# Outside the unit of work: on SQLite a list never waits for, or holds up, a writer.
ReplicaReadsDep = Annotated[ReplicaReads, Depends(get_replica_reads)]


async def client_address(request: Request) -> str:
    # uvicorn has already applied X-Forwarded-For from trusted proxies only.
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[SingleLineText | None, Query(max_length=MAX_CURSOR_LENGTH)]

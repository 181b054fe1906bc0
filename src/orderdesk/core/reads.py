"""The two ways to read outside the unit of work, named for what they give.

A service takes exactly one of three things first: the `UnitOfWork` (writes, and
reads of its own writes), `PrimaryReads` (the primary's committed state: who is
calling, what a request just wrote) or `ReplicaReads` (state that may lag behind
the primary by replication: lists, analytics).

Both read kinds are handles, not open connections: a service opens one for the
span of its reads (`async with reads.connection() as connection:`) and the
connection goes back to the pool when the block ends. So a request holds at most
one pooled connection at a time, whatever order FastAPI resolves its dependencies
in: the caller's authentication reads on its own short connection, released before
the route runs, and a route takes the unit of work or one read kind, never two
(a request holding one connection while waiting for a second could, with enough
such requests at once, wait forever on a pool they have emptied between them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession


@dataclass(frozen=True, slots=True)
class PrimaryReads:
    """Single-statement reads of the primary's committed state, outside any
    transaction: no session, no BEGIN/COMMIT round trips (see
    `Database.current_state`). Each statement sees its own snapshot, so a read that
    must be consistent across rows is one statement."""

    open_connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]]

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.open_connection()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session on one such connection, for repository functions written
        for sessions. Objects stay usable after the block; nothing is written."""
        async with (
            self.open_connection() as connection,
            AsyncSession(bind=connection, expire_on_commit=False) as session,
        ):
            yield session

    @classmethod
    def on(cls, connection: AsyncConnection) -> PrimaryReads:
        """Reads on a connection someone else holds (and closes): a handler's unit
        of work reading what it has just locked, without a second connection."""

        @asynccontextmanager
        async def borrowed() -> AsyncIterator[AsyncConnection]:
            yield connection

        return cls(borrowed)


@dataclass(frozen=True, slots=True)
class ReplicaReads:
    """ORM reads from the read replica when one is configured (otherwise a read-only
    view of the primary): they may lag behind what was just committed. On SQLite
    their transactions begin deferred, so a list never takes the write lock."""

    open_session: Callable[[], AbstractAsyncContextManager[AsyncSession]]

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self.open_session()

"""Engines and sessions for SQLite (MVP tier) and PostgreSQL (CORE/FULL tiers).

One factory knows what each backend needs. SQLite gets WAL, a busy timeout and
foreign keys, and write transactions that take the write lock up front
(`BEGIN IMMEDIATE`) so concurrent writers queue instead of failing to upgrade a
read lock. PostgreSQL gets a bounded pool without pre-ping: a ping costs three
round trips on every checkout, and a connection that died while pooled instead
fails one request with a 503 and is discarded with the rest of its pool (see
`core.errors`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.core.reads import PrimaryReads, ReplicaReads
from orderdesk.core.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 15_000
# Execution option: this SQLite connection only reads, so its transactions need not
# take the write lock.
DEFERRED_BEGIN = "orderdesk_deferred_begin"


def create_engine(url: str, settings: Settings, *, read_only: bool = False) -> AsyncEngine:
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings, read_only=read_only)
    return create_async_engine(
        url,
        echo=settings.database_echo,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_recycle=1800,
    )


def _sqlite_engine(url: str, settings: Settings, *, read_only: bool) -> AsyncEngine:
    engine = create_async_engine(
        url, echo=settings.database_echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )
    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _: Any) -> None:
        # Hand transaction control to SQLAlchemy (the driver's implicit BEGIN would
        # defeat BEGIN IMMEDIATE and SAVEPOINTs), then set the pragmas per connection.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        deferred = connection.get_execution_options().get(DEFERRED_BEGIN, False)
        connection.exec_driver_sql("BEGIN" if deferred else begin)

    return engine


@dataclass(frozen=True, slots=True)
class Database:
    """The primary engine for writes and an engine for reads: the replica when
    `ORDERDESK_DATABASE_READ_URL` is set, a read-only view of the primary otherwise."""

    engine: AsyncEngine
    read_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    # Readiness probes connect outside the pool (PostgreSQL): under a burst that
    # holds every pooled connection, a probe would otherwise wait for one, time out
    # and take the instance out of rotation for being busy.
    probe_engine: AsyncEngine | None = field(default=None, kw_only=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_engine(settings.database_url, settings)
        read_url = settings.database_read_url or settings.database_url
        if settings.database_read_url is None and not settings.is_sqlite:
            read_engine = engine
        else:
            read_engine = create_engine(read_url, settings, read_only=True)
        return cls.from_engines(engine, read_engine)

    @classmethod
    def from_engines(cls, engine: AsyncEngine, read_engine: AsyncEngine) -> Database:
        probe_engine = None
        if read_engine.dialect.name != "sqlite":
            probe_engine = create_async_engine(read_engine.url, poolclass=NullPool)
        return cls(
            engine=engine,
            read_engine=read_engine,
            probe_engine=probe_engine,
            sessions=async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False),
            read_sessions=async_sessionmaker(
                read_engine, class_=AsyncSession, expire_on_commit=False
            ),
        )

    def primary_reads(self) -> PrimaryReads:
        """Reads of the primary's committed state, each use on a `current_state()`
        connection of its own."""
        return PrimaryReads(self.current_state)

    def replica_reads(self) -> ReplicaReads:
        """Reads that may lag, each use in a `read_session()` of its own."""
        return ReplicaReads(self.read_session)

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        # Closing ends the transaction without a commit (reads never write) and
        # detaches the loaded objects with their state intact for the caller to use;
        # an explicit rollback would expire them instead.
        async with self.read_sessions() as session:
            yield session

    @asynccontextmanager
    async def current_state(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a few single-statement reads of the primary's committed
        state, outside any transaction: who is calling, what a request just wrote.

        Hot GETs use it instead of a unit of work: no session, no BEGIN/COMMIT
        round trips. Each statement sees its own snapshot, so a read that must be
        consistent across rows is one statement. On SQLite a transaction begun with
        a deferred BEGIN, which takes no write lock (SQLAlchemy's AUTOCOMMIT would
        reset the driver's transaction mode when the connection is returned).
        """
        async with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                yield await connection.execution_options(**{DEFERRED_BEGIN: True})
            else:
                yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def ping(self) -> None:
        # Through the read engine: on SQLite the primary's transactions begin with
        # BEGIN IMMEDIATE and would queue a health probe behind every writer.
        async with (self.probe_engine or self.read_engine).connect() as connection:
            await connection.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        if self.probe_engine is not None:
            await self.probe_engine.dispose()

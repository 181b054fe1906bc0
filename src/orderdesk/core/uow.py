"""The unit of work: one session, one transaction, owned by its caller.

A request, a job or a CLI command opens a unit of work, calls services with it and
then commits or rolls back. Services flush (to surface constraint violations and
stale versions early) and never commit, with one exception: `checkpoint()`, for a
service that must call out over the network between two transactions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.core import repository as core_repository
from orderdesk.core.clock import Clock, SystemClock
from orderdesk.core.database import Database
from orderdesk.core.errors import ConcurrentUpdate, DomainError
from orderdesk.core.models import Audited


@dataclass
class UnitOfWork:
    session: AsyncSession
    clock: Clock = field(default_factory=SystemClock)
    actor_id: UUID | None = None
    request_id: str | None = None
    checkpoints: int = 0
    # Rows of append-only records (audit log, outbox) waiting for the next flush.
    _staged: dict[sa.Table, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.session.info["uow"] = self

    def now(self) -> datetime:
        return self.clock.now()

    def stage(self, table: sa.Table, row: dict[str, Any]) -> None:
        """Queue a row that is written once and never read back in this unit of work
        (an audit entry, an outbox event): written at the next flush or commit with
        one multi-row INSERT per table, without an ORM object per row. Rolled back
        with everything else."""
        rows = self._staged.setdefault(table, [])
        # One multi-row INSERT takes its columns from the first row: a row with other
        # keys would silently lose values.
        if rows and row.keys() != rows[0].keys():
            raise ValueError(f"staged rows for {table.name} must have the same columns")
        rows.append(row)

    async def flush(self) -> None:
        try:
            await self.session.flush()
        except StaleDataError as exc:
            raise ConcurrentUpdate() from exc
        staged, self._staged = self._staged, {}
        for table, rows in staged.items():
            await core_repository.insert_rows(self.session, table, rows)

    async def commit(self) -> None:
        await self.flush()
        try:
            await self.session.commit()
        except StaleDataError as exc:
            raise ConcurrentUpdate() from exc

    async def checkpoint(self) -> None:
        """Commit what is done so far and go on in a new transaction. Only for a
        service that must call out over the network mid-way (a payment gateway):
        no transaction, and on SQLite no write lock, may be held across the call,
        and what it will call with (the attempt row whose ids derive its
        idempotency keys) must be durable before it does. Counted, so the
        idempotency wrapper knows its claim is already committed."""
        await self.commit()
        self.checkpoints += 1

    async def rollback(self) -> None:
        self._staged.clear()
        await self.session.rollback()


@asynccontextmanager
async def unit_of_work(
    database: Database, *, clock: Clock | None = None, request_id: str | None = None
) -> AsyncIterator[UnitOfWork]:
    """Commit when the block succeeds, roll back when it raises.

    A `DomainError` with `commit_changes` is a refusal that must still be recorded
    (a revoked token family), so its changes are committed before it propagates.
    """
    async with database.sessions() as session:
        uow = UnitOfWork(session=session, clock=clock or SystemClock(), request_id=request_id)
        try:
            yield uow
        except DomainError as exc:
            if exc.commit_changes:
                await uow.commit()
            else:
                await uow.rollback()
            raise
        except BaseException:
            await uow.rollback()
            raise
        else:
            await uow.commit()


@event.listens_for(Session, "before_flush")
def _stamp_audit_columns(session: Session, *_: Any) -> None:
    uow = session.info.get("uow")
    if uow is None:
        return
    now = uow.now()
    for obj in session.new:
        if isinstance(obj, Audited):
            obj.created_by = obj.created_by or uow.actor_id
            obj.updated_by = obj.updated_by or uow.actor_id
    for obj in session.dirty:
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            obj.updated_at = now
            obj.updated_by = uow.actor_id

"""Every query over the outbox's tables: staging new rows, claiming batches,
starting and settling events, effect keys, the dead-letter list and purges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.core.ids import new_id
from orderdesk.core.uow import UnitOfWork
from orderdesk.outbox.models import EventStatus, HandledEffect, OutboxEvent

_events = OutboxEvent.__table__  # type: ignore[attr-defined]


def stage_events(
    uow: UnitOfWork, *, topic: str, handlers: Sequence[str], payload: dict[str, Any]
) -> None:
    """Queue one pending row per handler, written with the unit of work's next flush
    (one multi-row INSERT, no ORM object per row)."""
    now = uow.now()
    for handler in handlers:
        uow.stage(
            _events,
            {
                "id": new_id(),
                "topic": topic,
                "handler": handler,
                "payload": payload,
                "status": EventStatus.PENDING,
                "attempts": 0,
                "available_at": now,
                "lease_expires_at": None,
                "last_error": None,
                "request_id": uow.request_id,
                "created_at": now,
                "completed_at": None,
            },
        )


async def claim_batch(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int
) -> list[UUID]:
    """Take up to `limit` events that are due, or whose lease ran out (a worker died
    holding them), and lease them to the caller. On PostgreSQL `SKIP LOCKED` lets
    several relays claim disjoint batches; on SQLite the write lock taken by the
    transaction makes the claimer single. Leasing is not an attempt: `start` counts
    one when a handler actually runs."""
    due = sa.or_(
        sa.and_(
            col(OutboxEvent.status) == EventStatus.PENDING,
            col(OutboxEvent.available_at) <= now,
        ),
        sa.and_(
            col(OutboxEvent.status) == EventStatus.RUNNING,
            col(OutboxEvent.lease_expires_at) < now,
        ),
    )
    candidates = (
        select(OutboxEvent.id)
        .where(due)
        .order_by(col(OutboxEvent.available_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.exec(candidates)).all())
    if not ids:
        return []
    await session.exec(
        sa.update(OutboxEvent)
        .where(col(OutboxEvent.id).in_(ids))
        .values(
            status=EventStatus.RUNNING,
            lease_expires_at=now + lease,
        )
        .execution_options(synchronize_session=False)
    )
    return ids


# Any constant shared by every relay; "odrelay" in ASCII.
_BOUNDED_RELAY_LOCK = 0x6F6472656C6179


async def serialize_bounded_relays(session: AsyncSession) -> None:
    """Make relays that count what is in flight take turns, until the transaction
    ends (PostgreSQL; SQLite's `BEGIN IMMEDIATE` already makes the claimer single)."""
    if session.get_bind().dialect.name == "postgresql":
        lock: Any = sa.select(sa.func.pg_advisory_xact_lock(_BOUNDED_RELAY_LOCK))
        await session.exec(lock)


async def count_in_flight(session: AsyncSession, *, now: datetime) -> int:
    """Events leased and not finished whose lease still runs: handed to a runner (and
    maybe waiting in a broker queue) or running a handler."""
    statement = (
        select(sa.func.count())
        .select_from(OutboxEvent)
        .where(
            col(OutboxEvent.status) == EventStatus.RUNNING,
            col(OutboxEvent.lease_expires_at) >= now,
        )
    )
    return int((await session.exec(statement)).one())


@dataclass(frozen=True, slots=True)
class StartedEvent:
    topic: str
    handler: str
    payload: dict[str, Any]
    attempts: int
    request_id: str | None


async def start(
    session: AsyncSession, event_id: UUID, *, now: datetime, lease: timedelta
) -> StartedEvent | None:
    """Count an attempt for a leased event whose handler is about to run, and renew
    its lease from now; None when it is not leased (finished meanwhile)."""
    statement = (
        sa.update(OutboxEvent)
        .where(col(OutboxEvent.id) == event_id, col(OutboxEvent.status) == EventStatus.RUNNING)
        .values(attempts=col(OutboxEvent.attempts) + 1, lease_expires_at=now + lease)
        .returning(
            col(OutboxEvent.topic),
            col(OutboxEvent.handler),
            col(OutboxEvent.payload),
            col(OutboxEvent.attempts),
            col(OutboxEvent.request_id),
        )
        .execution_options(synchronize_session=False)
    )
    row = (await session.exec(statement)).first()
    if row is None:
        return None
    topic, handler, payload, attempts, request_id = row
    return StartedEvent(
        topic=topic,
        handler=handler,
        payload=dict(payload),
        attempts=attempts,
        request_id=request_id,
    )


_MARK_DONE = (
    sa.update(_events)
    .where(_events.c.id == sa.bindparam("event_id"), _events.c.status != EventStatus.DONE)
    .values(
        status=EventStatus.DONE,
        completed_at=sa.bindparam("now"),
        lease_expires_at=None,
        last_error=None,
    )
)


async def mark_done(session: AsyncSession, event_id: UUID, *, now: datetime) -> None:
    await session.exec(_MARK_DONE, params={"event_id": event_id, "now": now})


async def get(session: AsyncSession, event_id: UUID) -> OutboxEvent | None:
    return await session.get(OutboxEvent, event_id)


async def list_page(
    session: AsyncSession, *, status: EventStatus | None, limit: int, after: UUID | None
) -> Sequence[OutboxEvent]:
    statement = select(OutboxEvent)
    if status is not None:
        statement = statement.where(OutboxEvent.status == status)
    if after is not None:
        statement = statement.where(col(OutboxEvent.id) > after)
    return (await session.exec(statement.order_by(col(OutboxEvent.id)).limit(limit + 1))).all()


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    statement = select(OutboxEvent.status, sa.func.count()).group_by(OutboxEvent.status)
    return {str(status): int(n) for status, n in (await session.exec(statement)).all()}


_effects = HandledEffect.__table__  # type: ignore[attr-defined]
_EFFECT_DONE = sa.select(_effects.c.id).where(_effects.c.key == sa.bindparam("key"))


async def effect_done(connection: AsyncConnection, key: str) -> bool:
    return (await connection.execute(_EFFECT_DONE, {"key": key})).first() is not None


async def record_effect(
    session: AsyncSession, key: str, *, event_id: UUID | None, now: datetime
) -> bool:
    """Record an effect; False when it was already recorded (a duplicate delivery)."""
    try:
        async with session.begin_nested():
            session.add(HandledEffect(key=key, event_id=event_id, created_at=now))
    except IntegrityError:
        return False
    return True


async def purge_done(session: AsyncSession, *, before: datetime) -> int:
    result = await session.exec(
        sa.delete(OutboxEvent).where(
            col(OutboxEvent.status) == EventStatus.DONE, col(OutboxEvent.completed_at) < before
        )
    )
    return int(result.rowcount)

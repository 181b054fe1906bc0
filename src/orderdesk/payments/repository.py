"""Queries on attempts, refunds and the gateway-event inbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.core.ids import new_id
from orderdesk.orders.models import Order
from orderdesk.payments.models import (
    ENDED,
    AttemptStatus,
    GatewayEventRecord,
    PaymentAttempt,
    PaymentRefund,
    RefundStatus,
)


async def lock_order(session: AsyncSession, order_id: UUID) -> Order | None:
    """The order, locked for this transaction (PostgreSQL; SQLite's writers are
    serialised already): payments and refunds of one order take turns."""
    statement = (
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).first()


async def live_attempt(session: AsyncSession, order_id: UUID) -> PaymentAttempt | None:
    statement = (
        select(PaymentAttempt)
        .where(PaymentAttempt.order_id == order_id, col(PaymentAttempt.status).not_in(ENDED))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).first()


async def live_attempt_id(session: AsyncSession, order_id: UUID) -> UUID | None:
    """The order's live attempt, without locking it (locks go order first)."""
    statement = select(PaymentAttempt.id).where(
        PaymentAttempt.order_id == order_id, col(PaymentAttempt.status).not_in(ENDED)
    )
    return (await session.exec(statement)).first()


async def next_attempt_no(session: AsyncSession, order_id: UUID) -> int:
    statement = select(sa.func.coalesce(sa.func.max(PaymentAttempt.attempt_no), 0)).where(
        PaymentAttempt.order_id == order_id
    )
    return int((await session.exec(statement)).one()) + 1


async def order_of_attempt(session: AsyncSession, attempt_id: UUID) -> UUID | None:
    """Which order an attempt is for, without locking anything: to lock the order
    first (locks are always taken order, then attempt or refund)."""
    statement = select(PaymentAttempt.order_id).where(PaymentAttempt.id == attempt_id)
    return (await session.exec(statement)).first()


async def order_and_confirmations(
    session: AsyncSession, attempt_id: UUID
) -> tuple[UUID, int] | None:
    """An attempt's order and its count of confirms so far, without locking."""
    statement = select(PaymentAttempt.order_id, PaymentAttempt.confirmations).where(
        PaymentAttempt.id == attempt_id
    )
    row = (await session.exec(statement)).first()
    return None if row is None else (row[0], row[1])


async def order_of_refund(session: AsyncSession, refund_id: UUID) -> UUID | None:
    statement = select(PaymentRefund.order_id).where(PaymentRefund.id == refund_id)
    return (await session.exec(statement)).first()


async def refund_id_by_gateway_id(session: AsyncSession, gateway_refund_id: str) -> UUID | None:
    statement = select(PaymentRefund.id).where(PaymentRefund.gateway_refund_id == gateway_refund_id)
    return (await session.exec(statement)).first()


async def lock_attempt(session: AsyncSession, attempt_id: UUID) -> PaymentAttempt | None:
    statement = (
        select(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).first()


async def succeeded_attempt(session: AsyncSession, order_id: UUID) -> PaymentAttempt | None:
    statement = select(PaymentAttempt).where(
        PaymentAttempt.order_id == order_id, PaymentAttempt.status == AttemptStatus.SUCCEEDED
    )
    return (await session.exec(statement)).first()


async def attempts_of(session: AsyncSession, order_id: UUID) -> Sequence[PaymentAttempt]:
    statement = (
        select(PaymentAttempt)
        .where(PaymentAttempt.order_id == order_id)
        .order_by(col(PaymentAttempt.attempt_no))
    )
    return (await session.exec(statement)).all()


async def refunds_of(session: AsyncSession, order_id: UUID) -> Sequence[PaymentRefund]:
    statement = (
        select(PaymentRefund)
        .where(PaymentRefund.order_id == order_id)
        .order_by(col(PaymentRefund.id))
        # Fresh, not the identity map's copy: another transaction may have moved
        # a refund since this session last read it (before a checkpoint).
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).all()


async def lock_refund(session: AsyncSession, refund_id: UUID) -> PaymentRefund | None:
    statement = (
        select(PaymentRefund)
        .where(PaymentRefund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).first()


async def stale_attempts(
    session: AsyncSession, *, statuses: Sequence[AttemptStatus], before: datetime, limit: int
) -> Sequence[UUID]:
    statement = (
        select(PaymentAttempt.id)
        .where(
            col(PaymentAttempt.status).in_(statuses),
            col(PaymentAttempt.updated_at) < before,
        )
        .order_by(col(PaymentAttempt.updated_at))
        .limit(limit)
    )
    return (await session.exec(statement)).all()


async def stale_refunds(session: AsyncSession, *, before: datetime, limit: int) -> Sequence[UUID]:
    statement = (
        select(PaymentRefund.id)
        .where(
            PaymentRefund.status == RefundStatus.PENDING,
            col(PaymentRefund.updated_at) < before,
        )
        .order_by(col(PaymentRefund.updated_at))
        .limit(limit)
    )
    return (await session.exec(statement)).all()


async def touch_attempts(session: AsyncSession, attempt_ids: Sequence[UUID], now: datetime) -> None:
    """Push back the next reconciliation of these attempts (the settling is queued)."""
    if attempt_ids:
        await session.exec(
            sa.update(PaymentAttempt)
            .where(col(PaymentAttempt.id).in_(attempt_ids))
            .values(updated_at=now, version=PaymentAttempt.version + 1)
        )


async def touch_refunds(session: AsyncSession, refund_ids: Sequence[UUID], now: datetime) -> None:
    if refund_ids:
        await session.exec(
            sa.update(PaymentRefund)
            .where(col(PaymentRefund.id).in_(refund_ids))
            .values(updated_at=now, version=PaymentRefund.version + 1)
        )


_events = GatewayEventRecord.__table__  # type: ignore[attr-defined]


def _insert_event_statement(insert: Any) -> Any:
    return (
        insert(_events)
        .values(
            id=sa.bindparam("id"),
            event_id=sa.bindparam("event_id"),
            type=sa.bindparam("type"),
            payload=sa.bindparam("payload", type_=sa.JSON),
            received_at=sa.bindparam("now"),
            handled_at=None,
            outcome=None,
        )
        .on_conflict_do_nothing(index_elements=[_events.c.event_id])
        .returning(_events.c.id)
    )


_INSERT_EVENT = {
    "postgresql": _insert_event_statement(postgresql.insert),
    "sqlite": _insert_event_statement(sqlite.insert),
}


async def insert_event(
    session: AsyncSession, *, event_id: str, type: str, payload: dict[str, Any], now: datetime
) -> UUID | None:
    """Record a gateway event once: the new row's id, or None when that event id is
    already in the inbox (a redelivery). One statement that cannot fail on the
    duplicate, so concurrent deliveries of one event need no savepoint."""
    params = {"id": new_id(), "event_id": event_id, "type": type, "payload": payload, "now": now}
    result = await session.exec(_INSERT_EVENT[session.get_bind().dialect.name], params=params)
    inserted: UUID | None = result.scalar_one_or_none()
    return inserted


async def lock_event(session: AsyncSession, row_id: UUID) -> GatewayEventRecord | None:
    statement = (
        select(GatewayEventRecord)
        .where(GatewayEventRecord.id == row_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).first()

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.orders.models import Order, OrderLine, OrderStatus
from orderdesk.orders.schemas import OrderFilter

_orders = Order.__table__  # type: ignore[attr-defined]
_lines = OrderLine.__table__  # type: ignore[attr-defined]
# An order and its lines in one statement (one row per line; one row with NULL line
# columns for an order without lines): one round trip and one snapshot. Built once,
# so SQLAlchemy need not derive its cache key on every read.
_ORDER_WITH_LINES = (
    sa.select(
        _orders.c.id,
        _orders.c.status,
        _orders.c.user_id,
        _orders.c.currency,
        _orders.c.total_amount,
        _orders.c.version,
        _orders.c.created_at,
        _orders.c.updated_at,
        _lines.c.product_id,
        _lines.c.sku,
        _lines.c.name,
        _lines.c.unit_price_amount,
        _lines.c.quantity,
        _lines.c.line_total_amount,
    )
    .select_from(_orders.outerjoin(_lines, _lines.c.order_id == _orders.c.id))
    .where(_orders.c.id == sa.bindparam("order_id"))
    .order_by(_lines.c.position)
)


async def get_by_id(session: AsyncSession, order_id: UUID) -> Order | None:
    return await session.get(Order, order_id)


async def insert_order(
    session: AsyncSession, order: dict[str, Any], lines: Sequence[dict[str, Any]]
) -> None:
    """Write a new order and its lines with two Core INSERTs (the lines as one
    multi-row statement): an order is written once, so ORM bookkeeping buys nothing."""
    await session.exec(sa.insert(_orders), params=order)
    await session.exec(sa.insert(_lines), params=lines)


async def order_with_lines(
    connection: AsyncConnection, order_id: UUID
) -> Sequence[sa.Row[*tuple[Any, ...]]]:
    """Rows of the order joined with its lines, in line order; none if it does not exist."""
    result = await connection.execute(_ORDER_WITH_LINES, {"order_id": order_id})
    return result.all()


async def lines_for(
    session: AsyncSession, order_ids: Iterable[UUID]
) -> dict[UUID, list[OrderLine]]:
    """The lines of many orders in one query (a page of orders costs two queries)."""
    ids = list(order_ids)
    if not ids:
        return {}
    statement = (
        select(OrderLine)
        .where(col(OrderLine.order_id).in_(ids))
        .order_by(col(OrderLine.order_id), col(OrderLine.position))
    )
    grouped: dict[UUID, list[OrderLine]] = defaultdict(list)
    for line in (await session.exec(statement)).all():
        grouped[line.order_id].append(line)
    return grouped


async def list_page(
    session: AsyncSession, *, filters: OrderFilter, limit: int, before: UUID | None
) -> Sequence[Order]:
    """Newest first (UUIDv7 ids sort by creation), `limit + 1` rows."""
    statement = select(Order)
    if filters.user_id is not None:
        statement = statement.where(Order.user_id == filters.user_id)
    if filters.status is not None:
        statement = statement.where(Order.status == filters.status)
    if filters.created_after is not None:
        statement = statement.where(col(Order.created_at) >= filters.created_after)
    if filters.created_before is not None:
        statement = statement.where(col(Order.created_at) < filters.created_before)
    if before is not None:
        statement = statement.where(col(Order.id) < before)
    statement = statement.order_by(col(Order.id).desc()).limit(limit + 1)
    return (await session.exec(statement)).all()


async def pending_created_before(
    session: AsyncSession, cutoff: datetime, *, limit: int
) -> Sequence[Order]:
    """Unpaid orders past their deadline, locked so concurrent expiry runs (several
    processes) each take different rows."""
    statement = (
        select(Order)
        .where(Order.status == OrderStatus.PENDING_PAYMENT, col(Order.created_at) < cutoff)
        .order_by(col(Order.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.exec(statement)).all()

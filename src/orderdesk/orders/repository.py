"""Order queries. Every read returns `OrderRecord`s (an order with its lines),
however it is made: one joined statement for a single order, two queries for a
page, or the values of a new order as inserted."""

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

from orderdesk.orders.models import (
    Order,
    OrderFilter,
    OrderLine,
    OrderLineRecord,
    OrderRecord,
    OrderStatus,
)

_orders = Order.__table__  # type: ignore[attr-defined]
_lines = OrderLine.__table__  # type: ignore[attr-defined]
_ORDER_COLUMNS = (
    _orders.c.id,
    _orders.c.status,
    _orders.c.user_id,
    _orders.c.currency,
    _orders.c.total_amount,
    _orders.c.version,
    _orders.c.created_at,
    _orders.c.updated_at,
)
_LINE_COLUMNS = (
    _lines.c.product_id,
    _lines.c.sku,
    _lines.c.name,
    _lines.c.unit_price_amount,
    _lines.c.quantity,
    _lines.c.line_total_amount,
)
_ORDER_FIELDS = tuple(column.name for column in _ORDER_COLUMNS)
_LINE_FIELDS = tuple(column.name for column in _LINE_COLUMNS)
# An order and its lines in one statement (one row per line; one row with NULL line
# columns for an order without lines): one round trip and one snapshot. Built once,
# so SQLAlchemy need not derive its cache key on every read.
_ORDER_WITH_LINES = (
    sa.select(*_ORDER_COLUMNS, *_LINE_COLUMNS)
    .select_from(_orders.outerjoin(_lines, _lines.c.order_id == _orders.c.id))
    .where(_orders.c.id == sa.bindparam("order_id"))
    .order_by(_lines.c.position)
)
_LINES_OF = (
    sa.select(_lines.c.order_id, *_LINE_COLUMNS)
    .where(_lines.c.order_id.in_(sa.bindparam("order_ids", expanding=True)))
    .order_by(_lines.c.order_id, _lines.c.position)
)


def _line(row: Any) -> OrderLineRecord:
    return OrderLineRecord(
        product_id=row.product_id,
        sku=row.sku,
        name=row.name,
        unit_price_amount=row.unit_price_amount,
        quantity=row.quantity,
        line_total_amount=row.line_total_amount,
    )


def _record(order: Any, lines: Iterable[OrderLineRecord]) -> OrderRecord:
    """From a result row or the `Order` entity (the `orders` column names as
    attributes)."""
    return OrderRecord(
        id=order.id,
        user_id=order.user_id,
        status=OrderStatus(order.status),
        currency=order.currency,
        total_amount=order.total_amount,
        version=order.version,
        created_at=order.created_at,
        updated_at=order.updated_at,
        lines=tuple(lines),
    )


async def get_with_lines(connection: AsyncConnection, order_id: UUID) -> OrderRecord | None:
    """The order with its lines in line order, from one statement; None if it does
    not exist."""
    rows = (await connection.execute(_ORDER_WITH_LINES, {"order_id": order_id})).all()
    if not rows:
        return None
    return _record(rows[0], (_line(row) for row in rows if row.product_id is not None))


async def get_by_id(session: AsyncSession, order_id: UUID) -> Order | None:
    """The entity itself, to change it in the unit of work (version-checked)."""
    return await session.get(Order, order_id)


async def record_of(session: AsyncSession, order: Order) -> OrderRecord:
    """An entity of this unit of work as a record, with its lines."""
    lines = await lines_for(session, [order.id])
    return _record(order, lines.get(order.id, ()))


async def insert_order(
    session: AsyncSession, order: dict[str, Any], lines: Sequence[dict[str, Any]]
) -> OrderRecord:
    """Write a new order and its lines with two Core INSERTs (the lines as one
    multi-row statement): an order is written once, so ORM bookkeeping buys nothing."""
    await session.exec(sa.insert(_orders), params=order)
    await session.exec(sa.insert(_lines), params=lines)
    return OrderRecord(
        **{name: order[name] for name in _ORDER_FIELDS},
        lines=tuple(
            OrderLineRecord(**{name: line[name] for name in _LINE_FIELDS}) for line in lines
        ),
    )


async def lines_for(
    session: AsyncSession, order_ids: Iterable[UUID]
) -> dict[UUID, list[OrderLineRecord]]:
    """The lines of many orders in one query (a page of orders costs two queries)."""
    ids = list(order_ids)
    if not ids:
        return {}
    connection = await session.connection()
    grouped: dict[UUID, list[OrderLineRecord]] = defaultdict(list)
    for row in await connection.execute(_LINES_OF, {"order_ids": ids}):
        grouped[row.order_id].append(_line(row))
    return grouped


async def page_with_lines(
    session: AsyncSession, *, filters: OrderFilter, limit: int, before: UUID | None
) -> tuple[list[OrderRecord], bool]:
    """Up to `limit` orders newest first (UUIDv7 ids sort by creation) with their
    lines, and whether more follow."""
    statement = sa.select(*_ORDER_COLUMNS)
    if filters.user_id is not None:
        statement = statement.where(_orders.c.user_id == filters.user_id)
    if filters.status is not None:
        statement = statement.where(_orders.c.status == filters.status)
    if filters.created_after is not None:
        statement = statement.where(_orders.c.created_at >= filters.created_after)
    if filters.created_before is not None:
        statement = statement.where(_orders.c.created_at < filters.created_before)
    if before is not None:
        statement = statement.where(_orders.c.id < before)
    statement = statement.order_by(_orders.c.id.desc()).limit(limit + 1)
    connection = await session.connection()
    rows = (await connection.execute(statement)).all()
    page = rows[:limit]
    lines = await lines_for(session, [row.id for row in page])
    return [_record(row, lines.get(row.id, ())) for row in page], len(rows) > limit


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

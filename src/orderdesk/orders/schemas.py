from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import Row

from orderdesk.core.money import Money
from orderdesk.core.schemas import INTEGRAL, STRICT, StrictModel
from orderdesk.orders.models import Order, OrderLine, OrderStatus

MAX_LINES = 100
MAX_QUANTITY = 10_000


class OrderLineCreate(StrictModel):
    product_id: UUID
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), STRICT, INTEGRAL]


class OrderCreate(StrictModel):
    """Only products and quantities: prices, totals, status and owner come from the
    server, and sending them is a 422."""

    lines: Annotated[list[OrderLineCreate], Field(min_length=1, max_length=MAX_LINES)]


class OrderLinePublic(BaseModel):
    product_id: UUID
    sku: str
    name: str
    unit_price: Money
    quantity: int
    line_total: Money

    @classmethod
    def from_line(cls, line: Any, currency: str) -> OrderLinePublic:
        return cls(
            product_id=line.product_id,
            sku=line.sku,
            name=line.name,
            unit_price=Money(amount=line.unit_price_amount, currency=currency),
            quantity=line.quantity,
            line_total=Money(amount=line.line_total_amount, currency=currency),
        )


class OrderPublic(BaseModel):
    id: UUID
    status: OrderStatus
    lines: list[OrderLinePublic]
    total: Money
    user_id: UUID
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def build(cls, order: Any, lines: Iterable[Any]) -> OrderPublic:
        """From anything with the `orders` and `order_lines` column names as
        attributes: entities, result rows, or the values of a new order."""
        currency = order.currency
        return cls(
            id=order.id,
            status=order.status,
            lines=[OrderLinePublic.from_line(line, currency) for line in lines],
            total=Money(amount=order.total_amount, currency=currency),
            user_id=order.user_id,
            version=order.version,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Row[*tuple[Any, ...]]]) -> OrderPublic:
        """From `orders.repository.order_with_lines`: the order's columns repeated on
        every row, a line's on each (NULL for an order without lines)."""
        return cls.build(rows[0], (row for row in rows if row.product_id is not None))

    @classmethod
    def from_order(cls, order: Order, lines: list[OrderLine]) -> OrderPublic:
        return cls.build(order, lines)


class OrderFilter(BaseModel):
    user_id: UUID | None = None
    status: OrderStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field

from orderdesk.core.money import Money
from orderdesk.core.schemas import INTEGRAL, STRICT, StrictModel
from orderdesk.orders.models import OrderRecord, OrderStatus

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
    def from_record(cls, order: OrderRecord) -> OrderPublic:
        currency = order.currency
        return cls(
            id=order.id,
            status=order.status,
            lines=[
                OrderLinePublic(
                    product_id=line.product_id,
                    sku=line.sku,
                    name=line.name,
                    unit_price=Money(amount=line.unit_price_amount, currency=currency),
                    quantity=line.quantity,
                    line_total=Money(amount=line.line_total_amount, currency=currency),
                )
                for line in order.lines
            ],
            total=Money(amount=order.total_amount, currency=currency),
            user_id=order.user_id,
            version=order.version,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import Audited, Entity


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


# The whole state machine. Anything else is an illegal transition (409).
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.FULFILLED, OrderStatus.REFUNDED}),
    OrderStatus.FULFILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

# Orders in these states hold stock: reserved at placement, returned on cancel.
HOLDS_STOCK = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLED})


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


class Order(Audited, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        # A customer's orders newest first; the expiry job's scan of unpaid orders.
        sa.Index("ix_orders_user_id_id", "user_id", "id"),
        sa.Index("ix_orders_status_created_at", "status", "created_at"),
    )

    user_id: UUID = Field(foreign_key="users.id", nullable=False)
    status: OrderStatus = Field(
        default=OrderStatus.PENDING_PAYMENT,
        sa_type=sa.Enum(
            OrderStatus,
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    currency: str = Field(max_length=3, nullable=False)
    total_amount: int = Field(sa_type=sa.BigInteger, nullable=False)


class OrderLine(Entity, table=True):
    """A snapshot of what was bought at placement: later catalog edits never change a
    placed order. Lines are written once with their order and never updated."""

    __tablename__ = "order_lines"

    order_id: UUID = Field(foreign_key="orders.id", nullable=False, index=True)
    position: int = Field(nullable=False)
    product_id: UUID = Field(foreign_key="products.id", nullable=False, index=True)
    sku: str = Field(max_length=64)
    name: str = Field(max_length=200)
    unit_price_amount: int = Field(sa_type=sa.BigInteger, nullable=False)
    quantity: int = Field(nullable=False)
    line_total_amount: int = Field(sa_type=sa.BigInteger, nullable=False)


@dataclass(frozen=True, slots=True)
class OrderLineRecord:
    product_id: UUID
    sku: str
    name: str
    unit_price_amount: int
    quantity: int
    line_total_amount: int


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order with its lines as the repository reads it: the one shape every order
    read returns (by id, a page, a new or changed order), whatever SQL produced it."""

    id: UUID
    user_id: UUID
    status: OrderStatus
    currency: str
    total_amount: int
    version: int
    created_at: datetime
    updated_at: datetime
    lines: tuple[OrderLineRecord, ...]


@dataclass(frozen=True, slots=True)
class OrderFilter:
    user_id: UUID | None = None
    status: OrderStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

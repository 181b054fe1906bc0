"""Payments: one attempt per payment intent at the gateway, the refunds made on it,
and the inbox of the gateway's webhook events.

Money is integer minor units in the order's currency, as on the order. The rows are
written *before* each call out (an attempt before its intent is created, a refund
before it is asked for), so every gateway call carries an idempotency key derived
from them, and an outcome lost to a timeout can be settled later by asking the
gateway, never by paying again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import Audited, Entity, UTCDateTime


def _enum(kind: type[StrEnum], length: int = 32) -> Any:
    return sa.Enum(
        kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class AttemptStatus(StrEnum):
    CREATING = "creating"  # the row is written; its intent may not exist yet
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"  # created, or declined: payable
    CONFIRMING = "confirming"  # a confirm is in flight
    REQUIRES_ACTION = "requires_action"  # 3-D Secure: the customer must authenticate
    PROCESSING = "processing"
    UNKNOWN = "unknown"  # a call's outcome was lost (timeout, 5xx): ask, never repeat
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    FAILED = "failed"  # its create failed or was refused, or the amount was not the order's


TERMINAL = frozenset({AttemptStatus.SUCCEEDED, AttemptStatus.CANCELED, AttemptStatus.FAILED})
# Not settled: reconciliation asks the gateway about these once they are old enough.
UNSETTLED = frozenset(
    {
        AttemptStatus.CREATING,
        AttemptStatus.CONFIRMING,
        AttemptStatus.UNKNOWN,
        AttemptStatus.PROCESSING,
        AttemptStatus.REQUIRES_ACTION,
    }
)
# At most one attempt per order that is not canceled or failed: a retry reuses it.
ENDED = (AttemptStatus.CANCELED.value, AttemptStatus.FAILED.value)
_LIVE = sa.column("status").not_in(ENDED)


class PaymentAttempt(Audited, table=True):
    __tablename__ = "payment_attempts"
    __table_args__ = (
        sa.Index(
            "uq_payment_attempts_live_order_id",
            "order_id",
            unique=True,
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        sa.Index("ix_payment_attempts_status_updated_at", "status", "updated_at"),
        sa.UniqueConstraint("order_id", "attempt_no"),
    )

    order_id: UUID = Field(foreign_key="orders.id", nullable=False)
    attempt_no: int = Field(nullable=False)
    amount: int = Field(sa_type=sa.BigInteger, nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    status: AttemptStatus = Field(
        default=AttemptStatus.CREATING, sa_type=_enum(AttemptStatus), nullable=False
    )
    intent_id: str | None = Field(default=None, max_length=255, unique=True)
    payment_method: str | None = Field(default=None, max_length=255)
    # Each confirm of the intent has its own key: a retry of one keeps it, another
    # card after a decline gets the next.
    confirmations: int = Field(default=0, nullable=False)
    # When the last confirm was sent: until CONFIRM_IN_FLIGHT after it, an intent
    # still awaiting a payment method may just not have seen that confirm yet.
    confirm_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decline_code: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, max_length=500)


class RefundStatus(StrEnum):
    PENDING = "pending"  # written, asked for (or about to be), not yet settled
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentRefund(Audited, table=True):
    __tablename__ = "payment_refunds"
    __table_args__ = (sa.Index("ix_payment_refunds_status_updated_at", "status", "updated_at"),)

    order_id: UUID = Field(foreign_key="orders.id", nullable=False, index=True)
    attempt_id: UUID = Field(foreign_key="payment_attempts.id", nullable=False)
    amount: int = Field(sa_type=sa.BigInteger, nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    status: RefundStatus = Field(
        default=RefundStatus.PENDING, sa_type=_enum(RefundStatus), nullable=False
    )
    restock: bool = Field(default=False, nullable=False)
    reason: str = Field(max_length=64, nullable=False)
    gateway_refund_id: str | None = Field(default=None, max_length=255, unique=True)
    failure_reason: str | None = Field(default=None, max_length=500)

    def key(self) -> str:
        return f"orderdesk:{self.order_id}:refund:{self.id}"


class GatewayEventRecord(Entity, table=True):
    """The inbox: one row per gateway event id, however often it is delivered. It is
    marked handled in the transaction that applies its effect."""

    __tablename__ = "payment_gateway_events"

    event_id: str = Field(max_length=255, nullable=False, unique=True)
    type: str = Field(max_length=100, nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=100)

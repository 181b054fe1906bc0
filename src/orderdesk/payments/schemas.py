from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from orderdesk.core.money import Money
from orderdesk.core.schemas import JsonBool, StrictModel
from orderdesk.core.text import SINGLE_LINE
from orderdesk.payments.models import (
    AttemptStatus,
    PaymentAttempt,
    PaymentRefund,
    RefundStatus,
)

PaymentMethodId = Annotated[
    str,
    Field(
        min_length=4,
        max_length=255,
        pattern=r"^pm_[A-Za-z0-9_]+$",
        description="A payment method id, e.g. Stripe's test card `pm_card_visa`.",
        examples=["pm_card_visa"],
    ),
    SINGLE_LINE,
]


class PaymentCreate(StrictModel):
    payment_method: PaymentMethodId


class PaymentPending(BaseModel):
    """The payment is not settled yet: the customer must authenticate it (3-D
    Secure, with `client_secret` in the gateway's client library), or its outcome
    is being settled with the gateway; the order becomes `paid` when it succeeds."""

    status: Literal["requires_action", "processing"]
    order_id: UUID
    payment_id: UUID
    client_secret: str | None = None


class RefundCreate(StrictModel):
    amount: Money | None = Field(
        default=None, description="What to refund; null refunds everything that remains."
    )
    restock: JsonBool = Field(
        default=False,
        description="Return the order's stock; only with the refund that completes it.",
    )


class PaymentAttemptPublic(BaseModel):
    id: UUID
    attempt_no: int
    status: AttemptStatus
    amount: Money
    payment_method: str | None
    decline_code: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: PaymentAttempt) -> PaymentAttemptPublic:
        return cls(
            id=row.id,
            attempt_no=row.attempt_no,
            status=row.status,
            amount=Money(amount=row.amount, currency=row.currency),
            payment_method=row.payment_method,
            decline_code=row.decline_code,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class RefundPublic(BaseModel):
    id: UUID
    payment_id: UUID
    status: RefundStatus
    amount: Money
    restock: bool
    reason: str
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: PaymentRefund) -> RefundPublic:
        return cls(
            id=row.id,
            payment_id=row.attempt_id,
            status=row.status,
            amount=Money(amount=row.amount, currency=row.currency),
            restock=row.restock,
            reason=row.reason,
            failure_reason=row.failure_reason,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class OrderPayments(BaseModel):
    order_id: UUID
    payments: list[PaymentAttemptPublic]
    refunds: list[RefundPublic]
    paid: Money
    refunded: Money

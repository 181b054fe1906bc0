"""The event catalogue: one frozen class per topic.

Emitters pass an instance (`outbox.emit(uow, OrderPlaced(order_id=order.id))`),
never a topic string; the topic is a class attribute and the row's payload is the
instance's JSON. Which handlers consume each event is wired in one table in
`orderdesk.bootstrap`, so `grep OrderPlaced` finds its emitter and every consumer.
A payload is read back with `Event.from_payload`; changing a field is a change of
the stored format, so add fields with defaults.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from orderdesk.auth.models import TokenPurpose


class Event(BaseModel):
    # Unknown fields are ignored, not refused: during a rolling deploy a newer
    # process may emit a field this one does not know yet, and its handler must
    # still run on what it does know.
    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Self:
        return cls.model_validate(payload)


class OrderEvent(Event):
    """Something happened to an order: the payload names it, handlers load it."""

    order_id: UUID


class OrderPlaced(OrderEvent):
    topic = "order.placed"


class OrderPaid(OrderEvent):
    topic = "order.paid"


class OrderCancelled(OrderEvent):
    topic = "order.cancelled"


class OrderFulfilled(OrderEvent):
    topic = "order.fulfilled"


class OrderRefunded(OrderEvent):
    topic = "order.refunded"


class UserRegistered(Event):
    topic = "user.registered"

    user_id: UUID


class AccountMailRequested(Event):
    """A message that carries a single-use token; the token is made when the
    message is sent, so no usable token ever sits in the outbox."""

    user_id: UUID
    purpose: TokenPurpose


class EmailVerificationRequested(AccountMailRequested):
    topic = "auth.email_verification_requested"

    purpose: Literal[TokenPurpose.VERIFY_EMAIL] = TokenPurpose.VERIFY_EMAIL


class PasswordResetRequested(AccountMailRequested):
    topic = "auth.password_reset_requested"

    purpose: Literal[TokenPurpose.RESET_PASSWORD] = TokenPurpose.RESET_PASSWORD


class WebhookDeliveryRequested(Event):
    topic = "webhook.delivery_requested"

    delivery_id: UUID


class GatewayEventReceived(Event):
    """A verified payment-gateway webhook is in the inbox, to be applied."""

    topic = "payment.gateway_event_received"

    inbox_id: UUID


class PaymentSettleRequested(Event):
    """Ask the gateway where a payment attempt stands and apply it (reconciliation,
    an order cancelled with a live intent)."""

    topic = "payment.settle_requested"

    attempt_id: UUID
    cancel: bool = False  # cancel the intent if it is still open


class RefundRequested(Event):
    """Ask the gateway for a refund row's refund, or where it stands."""

    topic = "payment.refund_requested"

    refund_id: UUID


EVENT_TYPES: tuple[type[Event], ...] = (
    OrderPlaced,
    OrderPaid,
    OrderCancelled,
    OrderFulfilled,
    OrderRefunded,
    UserRegistered,
    EmailVerificationRequested,
    PasswordResetRequested,
    WebhookDeliveryRequested,
    GatewayEventReceived,
    PaymentSettleRequested,
    RefundRequested,
)

# What webhook subscribers can receive: spelled once, here, as the API's enum.
WebhookTopic = Literal[
    "order.placed", "order.paid", "order.cancelled", "order.fulfilled", "order.refunded"
]
WEBHOOK_EVENTS: tuple[type[OrderEvent], ...] = (
    OrderPlaced,
    OrderPaid,
    OrderCancelled,
    OrderFulfilled,
    OrderRefunded,
)

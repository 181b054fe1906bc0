"""What the e-mails say: one message per kind, built from loaded data and the
templates. No I/O here; `notifications.handlers` loads, sends and records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from orderdesk.auth.models import TokenPurpose
from orderdesk.core.settings import Settings
from orderdesk.notifications.mailer import EmailMessage
from orderdesk.notifications.templates import money, render
from orderdesk.outbox.events import (
    OrderCancelled,
    OrderEvent,
    OrderFulfilled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
)

# The message kind of each order event that is mailed; the kind names the template
# and is part of the effect key, so it never changes once deployed.
ORDER_MAIL_KINDS: dict[type[OrderEvent], str] = {
    OrderPlaced: "order_placed",
    OrderPaid: "order_paid",
    OrderCancelled: "order_cancelled",
    OrderFulfilled: "order_fulfilled",
    OrderRefunded: "order_refunded",
}


class OrderSummary(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def currency(self) -> str: ...
    @property
    def total_amount(self) -> int: ...


class LineSummary(Protocol):
    @property
    def quantity(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def sku(self) -> str: ...
    @property
    def line_total_amount(self) -> int: ...


def order_mail_kind(event: OrderEvent) -> str:
    return ORDER_MAIL_KINDS[type(event)]


def order_mail_key(kind: str, order_id: UUID) -> str:
    """The effect key of an order e-mail: one message per kind and order."""
    return f"email:{kind}:{order_id}"


def account_mail_key(purpose: TokenPurpose, event_id: UUID) -> str:
    """One message per request (each request makes a fresh token)."""
    return f"email:{purpose.value}:{event_id}"


def message_id(key: str) -> str:
    """The Message-ID derived from an effect key: a resend after a crash carries the
    same one, so mail systems drop the copy."""
    return f"<{key.replace(':', '.')}@orderdesk.invalid>"


def order_message(
    kind: str,
    *,
    key: str,
    order: OrderSummary,
    lines: Sequence[LineSummary],
    to: str,
    name: str,
) -> EmailMessage:
    return _message(
        kind,
        key=key,
        to=to,
        name=name,
        order_id=str(order.id),
        short_id=str(order.id)[-8:],
        lines=[
            {
                "quantity": line.quantity,
                "name": line.name,
                "sku": line.sku,
                "total": money(line.line_total_amount, order.currency),
            }
            for line in lines
        ],
        total=money(order.total_amount, order.currency),
    )


def account_message(
    purpose: TokenPurpose, *, key: str, to: str, name: str, token: str, settings: Settings
) -> EmailMessage:
    return _message(
        purpose.value,
        key=key,
        to=to,
        name=name,
        token=token,
        hours=settings.email_verification_ttl_seconds // 3600,
        minutes=settings.password_reset_ttl_seconds // 60,
    )


def wants_account_mail(purpose: TokenPurpose, *, can_sign_in: bool, email_verified: bool) -> bool:
    """Only accounts that can sign in get mail; a verified address needs no
    verification message."""
    if not can_sign_in:
        return False
    return not (purpose is TokenPurpose.VERIFY_EMAIL and email_verified)


def _message(kind: str, *, key: str, to: str, name: str, **context: Any) -> EmailMessage:
    rendered = render(kind, name=name, **context)
    return EmailMessage(
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        kind=kind,
        message_id=message_id(key),
    )

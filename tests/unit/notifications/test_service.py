"""What the e-mails say, built from loaded data without any I/O."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest

from orderdesk.auth.models import TokenPurpose
from orderdesk.core.settings import Environment, Settings
from orderdesk.notifications import service as notification_service
from orderdesk.outbox.events import OrderCancelled, OrderPlaced, OrderRefunded

ORDER_ID = UUID("0190f5f0-0000-7000-8000-0000deadbeef")


@dataclass(frozen=True)
class Order:
    id: UUID
    currency: str
    total_amount: int


@dataclass(frozen=True)
class Line:
    quantity: int
    name: str
    sku: str
    line_total_amount: int


def test_an_order_message_names_the_order_and_its_total() -> None:
    key = notification_service.order_mail_key("order_placed", ORDER_ID)
    message = notification_service.order_message(
        "order_placed",
        key=key,
        order=Order(id=ORDER_ID, currency="EUR", total_amount=3048),
        lines=[Line(quantity=2, name="Enamel mug", sku="MUG", line_total_amount=2598)],
        to="alice@example.com",
        name="Alice",
    )

    assert message.to == "alice@example.com"
    assert message.kind == "order_placed"
    assert "deadbeef" in message.subject
    assert str(ORDER_ID) in message.text
    assert "30.48 EUR" in message.text
    assert message.html is not None
    assert "25.98 EUR" in message.html
    assert message.message_id == f"<email.order_placed.{ORDER_ID}@orderdesk.invalid>"


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (OrderPlaced(order_id=ORDER_ID), "order_placed"),
        (OrderCancelled(order_id=ORDER_ID), "order_cancelled"),
        (OrderRefunded(order_id=ORDER_ID), "order_refunded"),
    ],
)
def test_an_order_event_names_its_message_kind(event: OrderPlaced, kind: str) -> None:
    assert notification_service.order_mail_kind(event) == kind


def test_an_account_message_carries_its_token() -> None:
    settings = Settings(_env_file=None, env=Environment.TEST, secret_key="k" * 40)
    token = "A" * 43
    message = notification_service.account_message(
        TokenPurpose.RESET_PASSWORD,
        key=notification_service.account_mail_key(TokenPurpose.RESET_PASSWORD, ORDER_ID),
        to="bob@example.com",
        name="Bob",
        token=token,
        settings=settings,
    )

    assert message.kind == "reset_password"
    assert token in message.text
    assert message.message_id == f"<email.reset_password.{ORDER_ID}@orderdesk.invalid>"


@pytest.mark.parametrize(
    ("purpose", "can_sign_in", "verified", "wanted"),
    [
        (TokenPurpose.VERIFY_EMAIL, True, False, True),
        (TokenPurpose.VERIFY_EMAIL, True, True, False),
        (TokenPurpose.RESET_PASSWORD, True, True, True),
        (TokenPurpose.RESET_PASSWORD, False, False, False),
    ],
)
def test_who_gets_account_mail(
    purpose: TokenPurpose, can_sign_in: bool, verified: bool, wanted: bool
) -> None:
    assert (
        notification_service.wants_account_mail(
            purpose, can_sign_in=can_sign_in, email_verified=verified
        )
        is wanted
    )

"""A shop to order from over the API, and looks at the order e-mails and their
outbox rows."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from orderdesk.notifications.mailer import EmailMessage
from orderdesk.orders.models import Order, OrderStatus
from orderdesk.outbox.models import EventStatus, OutboxEvent
from tests.factories import bearer, signed_in_as, signed_up
from tests.fakes import RecordingMailer

API = "/api/v1"
Headers = dict[str, str]
# Two lines, so the order total (2 x 12.99 + 4.50) is a figure no line shows.
TOTAL = "30.48 EUR"


@dataclasses.dataclass(frozen=True)
class Shop:
    staff: Headers
    mug: str
    pen: str


@dataclasses.dataclass(frozen=True)
class Customer:
    email: str
    headers: Headers


async def open_shop(client: httpx.AsyncClient, container: Container) -> Shop:
    _, staff = await signed_in_as(client, container, Role.STAFF)
    mug = await create_product(client, staff, name="Enamel mug", amount=1299)
    pen = await create_product(client, staff, name="Fountain pen", amount=450)
    return Shop(staff=staff, mug=mug, pen=pen)


async def create_product(
    client: httpx.AsyncClient, staff: Headers, *, name: str, amount: int
) -> str:
    response = await client.post(
        f"{API}/products",
        json={
            "sku": f"MAIL-{uuid.uuid4().hex[:12]}",
            "name": name,
            "price": {"amount": amount, "currency": "EUR"},
            "stock": 100,
        },
        headers=staff,
    )
    assert response.status_code == 201, response.text
    product_id: str = response.json()["id"]
    return product_id


async def new_customer(client: httpx.AsyncClient) -> Customer:
    user, tokens = await signed_up(client)
    return Customer(email=user["email"], headers=bearer(tokens))


async def place(
    client: httpx.AsyncClient, shop: Shop, customer: Customer, *, key: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/orders",
        json={
            "lines": [
                {"product_id": shop.mug, "quantity": 2},
                {"product_id": shop.pen, "quantity": 1},
            ]
        },
        headers={**customer.headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    assert order["total"] == {"amount": 3048, "currency": "EUR"}
    return order


def mails_to(mailer: RecordingMailer, kind: str, address: str) -> list[EmailMessage]:
    return mailer.messages(kind, to=address)


async def mark_paid(container: Container, order_id: str) -> None:
    """Payments are not built yet: move the order to `paid` as the payment flow will."""
    async with container.database.sessions() as session:
        await session.exec(
            sa.update(Order)
            .where(col(Order.id) == UUID(order_id))
            .values(status=OrderStatus.PAID, version=col(Order.version) + 1)
        )
        await session.commit()


async def mail_event(container: Container, order_id: str, handler: str) -> OutboxEvent:
    async with container.database.sessions() as session:
        events = (
            await session.exec(select(OutboxEvent).where(OutboxEvent.handler == handler))
        ).all()
    matching = [event for event in events if event.payload == {"order_id": order_id}]
    assert len(matching) == 1, matching
    return matching[0]


async def expire_lease(container: Container, event_id: UUID) -> None:
    """Put a finished event back as a crashed runner would leave it: running, with a
    lease that has run out."""
    async with container.database.sessions() as session:
        await session.exec(
            sa.update(OutboxEvent)
            .where(col(OutboxEvent.id) == event_id)
            .values(
                status=EventStatus.RUNNING,
                completed_at=None,
                lease_expires_at=container.clock.now() - timedelta(seconds=1),
            )
        )
        await session.commit()

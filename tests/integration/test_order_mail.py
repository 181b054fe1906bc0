"""Order e-mails: one message per order event to the order's customer, with the
order's total, sent once however often its event is delivered."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.app import create_app
from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from orderdesk.core.database import create_engine
from orderdesk.notifications.mailer import SmtpConfig, SmtpMailer
from orderdesk.orders.models import Order, OrderStatus
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.models import EventStatus, HandledEffect, OutboxEvent
from tests.conftest import (
    DatabaseFactory,
    JobsRunningTransport,
    MailLog,
    drain_outbox,
    make_settings,
)
from tests.e2e.jobs_support import Inbox, html_of, message_id_of, smtp_server, text_of
from tests.helpers import bearer, signed_up
from tests.integration.support import signed_in_as

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


def mails_to(mail_log: MailLog, kind: str, address: str) -> list[dict[str, Any]]:
    return [message for message in mail_log.messages(kind) if message["to"] == address]


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


@pytest.fixture
async def shop(client: httpx.AsyncClient, container: Container) -> Shop:
    return await open_shop(client, container)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Customer:
    return await new_customer(client)


# --- one message per event ---------------------------------------------------------------


async def test_placing_an_order_mails_the_customer_once(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    order = await place(client, shop, alice)

    sent = mails_to(mail_log, "order_placed", alice.email)
    assert len(sent) == 1
    assert order["id"][-8:] in sent[0]["subject"]
    assert order["id"] in sent[0]["text"]


async def test_the_order_placed_message_shows_the_total(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    await place(client, shop, alice)

    (sent,) = mails_to(mail_log, "order_placed", alice.email)
    assert TOTAL in sent["text"]


async def test_cancelling_an_order_mails_the_customer_once(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    order = await place(client, shop, alice)

    response = await client.post(f"{API}/orders/{order['id']}/cancel", headers=alice.headers)

    assert response.status_code == 200, response.text
    sent = mails_to(mail_log, "order_cancelled", alice.email)
    assert len(sent) == 1
    assert order["id"] in sent[0]["text"]
    assert TOTAL in sent[0]["text"]


async def test_fulfilling_an_order_mails_the_customer_once(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mail_log: MailLog,
) -> None:
    order = await place(client, shop, alice)
    await mark_paid(container, order["id"])

    response = await client.post(f"{API}/orders/{order['id']}/fulfill", headers=shop.staff)

    assert response.status_code == 200, response.text
    sent = mails_to(mail_log, "order_fulfilled", alice.email)
    assert len(sent) == 1
    assert order["id"] in sent[0]["text"]
    assert TOTAL in sent[0]["text"]


async def test_each_order_gets_its_own_message(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    first = await place(client, shop, alice)
    second = await place(client, shop, alice)

    sent = mails_to(mail_log, "order_placed", alice.email)
    assert sorted(message["message_id"] for message in sent) == sorted(
        f"<email.order_placed.{order['id']}@orderdesk.invalid>" for order in (first, second)
    )


async def test_another_customers_order_sends_alice_nothing(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    bob = await new_customer(client)

    await place(client, shop, bob)

    assert mails_to(mail_log, "order_placed", alice.email) == []
    assert len(mails_to(mail_log, "order_placed", bob.email)) == 1


async def test_a_replayed_order_request_sends_no_second_message(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    first = await place(client, shop, alice, key="same-key-twice")

    replay = await place(client, shop, alice, key="same-key-twice")

    assert replay["id"] == first["id"]
    assert len(mails_to(mail_log, "order_placed", alice.email)) == 1


async def test_a_refused_order_sends_no_message(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    response = await client.post(
        f"{API}/orders",
        json={"lines": [{"product_id": shop.mug, "quantity": 1000}]},
        headers={**alice.headers, "Idempotency-Key": uuid.uuid4().hex},
    )

    assert response.status_code == 409
    assert mails_to(mail_log, "order_placed", alice.email) == []


# --- delivered twice, sent once ----------------------------------------------------------


async def test_a_redelivered_order_event_sends_nothing_new(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mail_log: MailLog,
) -> None:
    order = await place(client, shop, alice)
    event = await mail_event(container, order["id"], "email.order_placed")
    await expire_lease(container, event.id)

    ran = await drain_outbox(container)

    again = await mail_event(container, order["id"], "email.order_placed")
    assert ran >= 1
    assert (again.status, again.attempts) == (EventStatus.DONE, 2)
    assert len(mails_to(mail_log, "order_placed", alice.email)) == 1


async def test_running_a_finished_order_event_again_sends_nothing(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mail_log: MailLog,
) -> None:
    order = await place(client, shop, alice)
    event = await mail_event(container, order["id"], "email.order_placed")

    completed = await outbox_service.run_event(container, event.id)

    assert completed is False
    assert len(mails_to(mail_log, "order_placed", alice.email)) == 1


async def test_the_sent_message_is_recorded_under_its_business_key(
    client: httpx.AsyncClient, container: Container, shop: Shop, alice: Customer
) -> None:
    order = await place(client, shop, alice)

    async with container.database.sessions() as session:
        keys = (
            await session.exec(
                select(HandledEffect.key).where(
                    HandledEffect.key == f"email:order_placed:{order['id']}"
                )
            )
        ).all()
    assert len(keys) == 1


async def test_the_mail_event_is_done_in_the_transaction_that_records_the_send(
    client: httpx.AsyncClient, container: Container, shop: Shop, alice: Customer
) -> None:
    """The record of the send and the event's completion commit together (one
    timestamp): no window in which the mail is recorded but its event still runs."""
    order = await place(client, shop, alice)
    event = await mail_event(container, order["id"], "email.order_placed")

    async with container.database.sessions() as session:
        effect = (
            await session.exec(
                select(HandledEffect).where(
                    HandledEffect.key == f"email:order_placed:{order['id']}"
                )
            )
        ).one()
    assert event.status == EventStatus.DONE
    assert effect.event_id == event.id
    assert event.completed_at == effect.created_at


async def test_the_message_id_is_derived_from_the_order(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mail_log: MailLog
) -> None:
    order = await place(client, shop, alice)

    (sent,) = mails_to(mail_log, "order_placed", alice.email)
    assert sent["message_id"] == f"<email.order_placed.{order['id']}@orderdesk.invalid>"


async def test_a_resend_after_a_lost_record_carries_the_same_message_id(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mail_log: MailLog,
) -> None:
    # The crash window: the message went out, the runner died before recording it.
    order = await place(client, shop, alice)
    async with container.database.sessions() as session:
        await session.exec(
            sa.delete(HandledEffect).where(
                col(HandledEffect.key) == f"email:order_placed:{order['id']}"
            )
        )
        await session.commit()
    event = await mail_event(container, order["id"], "email.order_placed")
    await expire_lease(container, event.id)

    await drain_outbox(container)

    sent = mails_to(mail_log, "order_placed", alice.email)
    assert len(sent) == 2
    assert sent[0]["message_id"] == sent[1]["message_id"]


# --- over real SMTP: text and HTML -------------------------------------------------------


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[Inbox, str]]:
    with smtp_server() as server:
        yield server.inbox, server.url


@pytest.fixture
async def smtp_client(
    container: Container, smtp_inbox: tuple[Inbox, str]
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    smtp_container = dataclasses.replace(
        container, mailer=SmtpMailer(SmtpConfig.from_url(smtp_inbox[1]))
    )
    app = create_app(smtp_container.settings, container=smtp_container)
    transport = JobsRunningTransport(container=smtp_container, app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, smtp_container


async def test_the_smtp_message_carries_the_total_in_text_and_html(
    smtp_client: tuple[httpx.AsyncClient, Container], smtp_inbox: tuple[Inbox, str]
) -> None:
    client, smtp_container = smtp_client
    shop = await open_shop(client, smtp_container)
    alice = await new_customer(client)

    order = await place(client, shop, alice)

    inbox = smtp_inbox[0]
    (sent,) = inbox.messages("order_placed")
    assert sent["To"] == alice.email
    assert message_id_of(sent) == f"<email.order_placed.{order['id']}@orderdesk.invalid>"
    assert TOTAL in text_of(sent)
    assert TOTAL in html_of(sent)
    assert order["id"] in html_of(sent)


async def test_the_smtp_cancellation_carries_the_total_in_text_and_html(
    smtp_client: tuple[httpx.AsyncClient, Container], smtp_inbox: tuple[Inbox, str]
) -> None:
    client, smtp_container = smtp_client
    shop = await open_shop(client, smtp_container)
    alice = await new_customer(client)
    order = await place(client, shop, alice)

    await client.post(f"{API}/orders/{order['id']}/cancel", headers=alice.headers)

    (sent,) = smtp_inbox[0].messages("order_cancelled")
    assert sent["To"] == alice.email
    assert TOTAL in text_of(sent)
    assert TOTAL in html_of(sent)


# --- a read replica that lags --------------------------------------------------------


@pytest.fixture
async def lagging_replica_client(
    container: Container, backend: str, database_factory: DatabaseFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """The app with its reads routed to a "replica" that has not caught up at all: a
    migrated database that never receives a write."""
    replica_url = await database_factory.create_migrated(backend)
    replica = create_engine(replica_url, make_settings(replica_url), read_only=True)
    database = dataclasses.replace(
        container.database,
        read_engine=replica,
        read_sessions=async_sessionmaker(replica, class_=AsyncSession, expire_on_commit=False),
    )
    lagging = dataclasses.replace(container, database=database)
    app = create_app(lagging.settings, container=lagging)
    transport = JobsRunningTransport(container=lagging, app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, lagging
    finally:
        await replica.dispose()


async def test_the_order_mail_is_sent_even_when_the_read_replica_lags(
    lagging_replica_client: tuple[httpx.AsyncClient, Container], mail_log: MailLog
) -> None:
    client, lagging = lagging_replica_client
    shop = await open_shop(client, lagging)
    alice = await new_customer(client)

    order = await place(client, shop, alice)

    (sent,) = mails_to(mail_log, "order_placed", alice.email)
    assert order["id"] in sent["text"]

"""Order e-mails: one message per order event to the order's customer, with the
order's total, in text and HTML over real SMTP, whatever a read replica lags."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.app import create_app
from orderdesk.container import Container
from orderdesk.core.database import create_engine
from orderdesk.notifications.mailer import SmtpConfig, SmtpMailer
from tests.fakes import RecordingMailer
from tests.helpers import DatabaseFactory, JobsRunningTransport, make_settings
from tests.integration.notifications.shop import (
    API,
    TOTAL,
    Customer,
    Shop,
    mails_to,
    mark_paid,
    new_customer,
    open_shop,
    place,
)
from tests.servers import Inbox, html_of, message_id_of, smtp_server, text_of

# --- one message per event ---------------------------------------------------------------


async def test_placing_an_order_mails_the_customer_once(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    order = await place(client, shop, alice)

    sent = mails_to(mailer, "order_placed", alice.email)
    assert len(sent) == 1
    assert order["id"][-8:] in sent[0].subject
    assert order["id"] in sent[0].text


async def test_the_order_placed_message_shows_the_total(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    await place(client, shop, alice)

    (sent,) = mails_to(mailer, "order_placed", alice.email)
    assert TOTAL in sent.text


async def test_cancelling_an_order_mails_the_customer_once(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    order = await place(client, shop, alice)

    response = await client.post(f"{API}/orders/{order['id']}/cancel", headers=alice.headers)

    assert response.status_code == 200, response.text
    sent = mails_to(mailer, "order_cancelled", alice.email)
    assert len(sent) == 1
    assert order["id"] in sent[0].text
    assert TOTAL in sent[0].text


async def test_fulfilling_an_order_mails_the_customer_once(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mailer: RecordingMailer,
) -> None:
    order = await place(client, shop, alice)
    await mark_paid(container, order["id"])

    response = await client.post(f"{API}/orders/{order['id']}/fulfill", headers=shop.staff)

    assert response.status_code == 200, response.text
    sent = mails_to(mailer, "order_fulfilled", alice.email)
    assert len(sent) == 1
    assert order["id"] in sent[0].text
    assert TOTAL in sent[0].text


async def test_each_order_gets_its_own_message(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    first = await place(client, shop, alice)
    second = await place(client, shop, alice)

    sent = mails_to(mailer, "order_placed", alice.email)
    assert sorted(message.message_id for message in sent) == sorted(
        f"<email.order_placed.{order['id']}@orderdesk.invalid>" for order in (first, second)
    )


async def test_another_customers_order_sends_alice_nothing(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    bob = await new_customer(client)

    await place(client, shop, bob)

    assert mails_to(mailer, "order_placed", alice.email) == []
    assert len(mails_to(mailer, "order_placed", bob.email)) == 1


async def test_a_replayed_order_request_sends_no_second_message(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    first = await place(client, shop, alice, key="same-key-twice")

    replay = await place(client, shop, alice, key="same-key-twice")

    assert replay["id"] == first["id"]
    assert len(mails_to(mailer, "order_placed", alice.email)) == 1


async def test_a_refused_order_sends_no_message(
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    response = await client.post(
        f"{API}/orders",
        json={"lines": [{"product_id": shop.mug, "quantity": 1000}]},
        headers={**alice.headers, "Idempotency-Key": uuid.uuid4().hex},
    )

    assert response.status_code == 409
    assert mails_to(mailer, "order_placed", alice.email) == []


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
    lagging_replica_client: tuple[httpx.AsyncClient, Container], mailer: RecordingMailer
) -> None:
    client, lagging = lagging_replica_client
    shop = await open_shop(client, lagging)
    alice = await new_customer(client)

    order = await place(client, shop, alice)

    (sent,) = mails_to(mailer, "order_placed", alice.email)
    assert order["id"] in sent.text

"""An order e-mail is sent once however often its event is delivered: the send is
recorded under a business key, with the event's completion, and a resend after a
lost record carries the same Message-ID."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from orderdesk.container import Container
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.models import EventStatus, HandledEffect
from tests.fakes import RecordingMailer
from tests.helpers import drain_outbox
from tests.integration.notifications.shop import (
    Customer,
    Shop,
    expire_lease,
    mail_event,
    mails_to,
    place,
)

# --- delivered twice, sent once ----------------------------------------------------------


async def test_a_redelivered_order_event_sends_nothing_new(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mailer: RecordingMailer,
) -> None:
    order = await place(client, shop, alice)
    event = await mail_event(container, order["id"], "email.order_placed")
    await expire_lease(container, event.id)

    ran = await drain_outbox(container)

    again = await mail_event(container, order["id"], "email.order_placed")
    assert ran >= 1
    assert (again.status, again.attempts) == (EventStatus.DONE, 2)
    assert len(mails_to(mailer, "order_placed", alice.email)) == 1


async def test_running_a_finished_order_event_again_sends_nothing(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mailer: RecordingMailer,
) -> None:
    order = await place(client, shop, alice)
    event = await mail_event(container, order["id"], "email.order_placed")

    completed = await outbox_service.run_event(container, event.id)

    assert completed is False
    assert len(mails_to(mailer, "order_placed", alice.email)) == 1


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
    client: httpx.AsyncClient, shop: Shop, alice: Customer, mailer: RecordingMailer
) -> None:
    order = await place(client, shop, alice)

    (sent,) = mails_to(mailer, "order_placed", alice.email)
    assert sent.message_id == f"<email.order_placed.{order['id']}@orderdesk.invalid>"


async def test_a_resend_after_a_lost_record_carries_the_same_message_id(
    client: httpx.AsyncClient,
    container: Container,
    shop: Shop,
    alice: Customer,
    mailer: RecordingMailer,
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

    sent = mails_to(mailer, "order_placed", alice.email)
    assert len(sent) == 2
    assert sent[0].message_id == sent[1].message_id

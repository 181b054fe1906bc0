"""`emit`: events written with the change that causes them, one row per handler of
the event's type, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlmodel import select

from orderdesk.auth.permissions import Role
from orderdesk.bootstrap import HANDLERS
from orderdesk.catalog import service as catalog_service
from orderdesk.catalog.schemas import ProductCreate
from orderdesk.container import Container
from orderdesk.core.money import Money
from orderdesk.core.uow import unit_of_work
from orderdesk.orders import service as order_service
from orderdesk.orders.models import Order
from orderdesk.orders.schemas import OrderCreate
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.events import OrderPlaced
from orderdesk.outbox.models import EventStatus, OutboxEvent
from orderdesk.outbox.wiring import HandlerTable
from orderdesk.users.models import User
from tests.factories import make_account
from tests.integration.outbox.probes import Fanout, Unheard, emit_event, events_of, token


class Abort(Exception):
    """Raised inside a unit of work to make it roll back."""


async def test_emit_writes_one_pending_row_per_subscribed_handler(
    container: Container, probes: HandlerTable
) -> None:
    event = Fanout(token=token())
    before = datetime.now(UTC)

    events = await emit_event(container, event)

    assert sorted(row.handler for row in events) == ["test.fanout.first", "test.fanout.second"]
    for row in events:
        assert row.status is EventStatus.PENDING
        assert row.attempts == 0
        assert row.payload == {"token": event.token}
        assert before <= row.available_at <= datetime.now(UTC)


async def test_emit_returns_how_many_rows_it_wrote(
    container: Container, probes: HandlerTable
) -> None:
    async with unit_of_work(container.database) as uow:
        fanned_out = outbox_service.emit(uow, Fanout(token=token()))
        unheard = outbox_service.emit(uow, Unheard(token=token()))

    assert (fanned_out, unheard) == (2, 0)


async def test_an_event_nobody_subscribes_to_writes_no_row(
    container: Container, probes: HandlerTable
) -> None:
    events = await emit_event(container, Unheard(token=token()))

    assert events == []


async def test_emit_records_the_request_id_of_the_unit_of_work(
    container: Container, probes: HandlerTable
) -> None:
    event = Fanout(token=token())
    async with unit_of_work(container.database, request_id="req-outbox-123") as uow:
        outbox_service.emit(uow, event)

    rows = [e for e in await events_of(container, Fanout.topic) if e.payload == event.payload()]
    assert {row.request_id for row in rows} == {"req-outbox-123"}


async def test_an_event_emitted_in_a_rolled_back_unit_of_work_is_never_written(
    container: Container, probes: HandlerTable
) -> None:
    event = Fanout(token=token())

    async def emit_then_fail() -> None:
        async with unit_of_work(container.database) as uow:
            outbox_service.emit(uow, event)
            await uow.flush()
            raise Abort

    with pytest.raises(Abort):
        await emit_then_fail()

    rows = await events_of(container, Fanout.topic)
    assert [e for e in rows if e.payload == event.payload()] == []


# --- a real emitter, with the production table -------------------------------------------


async def a_customer_and_a_product(c: Container, *, stock: int = 10) -> tuple[User, UUID]:
    customer = await make_account(c, Role.CUSTOMER)
    data = ProductCreate(
        sku=f"OUTBOX-{token()[:12]}",
        name="Outbox mug",
        price=Money(amount=1299, currency="EUR"),
        stock=stock,
    )
    async with unit_of_work(c.database, clock=c.clock) as uow:
        product = await catalog_service.create_product(uow, data=data)
    return customer, product.id


def order_of(product_id: UUID, quantity: int = 1) -> OrderCreate:
    return OrderCreate.model_validate(
        {"lines": [{"product_id": str(product_id), "quantity": quantity}]}
    )


def subscribers(event_type: type[OrderPlaced]) -> set[str]:
    return {consumer.name for consumer in HANDLERS.consumers_of(event_type)}


async def test_placing_an_order_writes_an_order_placed_row_for_each_subscriber(
    container: Container,
) -> None:
    customer, product_id = await a_customer_and_a_product(container)

    async with unit_of_work(container.database) as uow:
        order = await order_service.place_order(uow, customer=customer, data=order_of(product_id))

    rows = [
        event
        for event in await events_of(container, OrderPlaced.topic)
        if event.payload == {"order_id": str(order.id)}
    ]
    assert "email.order_placed" in subscribers(OrderPlaced)
    assert sorted(event.handler for event in rows) == sorted(subscribers(OrderPlaced))


async def place_then_abort(c: Container, customer: User, product_id: UUID) -> list[UUID]:
    """Place an order in a unit of work that then fails; the id of the order it placed
    (in the list, filled before the failure)."""
    placed: list[UUID] = []
    pending: list[OutboxEvent] = []

    async def fail_after_placing() -> None:
        async with unit_of_work(c.database) as uow:
            order = await order_service.place_order(
                uow, customer=customer, data=order_of(product_id)
            )
            placed.append(order.id)
            await uow.flush()  # outbox rows are written at the flush, inside this transaction
            written = await uow.session.exec(
                select(OutboxEvent).where(OutboxEvent.topic == OrderPlaced.topic)
            )
            pending.extend(e for e in written if e.payload.get("order_id") == str(order.id))
            raise Abort

    with pytest.raises(Abort):
        await fail_after_placing()
    assert pending, "the event should have been written in the caller's transaction"
    return placed


async def test_an_order_rolled_back_leaves_no_event(container: Container) -> None:
    customer, product_id = await a_customer_and_a_product(container)

    placed = await place_then_abort(container, customer, product_id)

    rows = await events_of(container, OrderPlaced.topic)
    assert placed
    assert str(placed[0]) not in {event.payload.get("order_id") for event in rows}
    async with container.database.sessions() as session:
        assert await session.get(Order, placed[0]) is None

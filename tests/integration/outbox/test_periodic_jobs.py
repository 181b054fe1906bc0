"""Periodic jobs: expiring unpaid orders (stock returns to the shelf) and purging
expired tokens, idempotency keys and long-finished events, keeping live ones."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import SQLModel, col, select

from orderdesk.auth.models import OneTimeToken, RefreshToken, TokenPurpose
from orderdesk.auth.permissions import Role
from orderdesk.bootstrap import PERIODIC_JOBS
from orderdesk.catalog import service as catalog_service
from orderdesk.catalog.models import Product
from orderdesk.catalog.schemas import ProductCreate
from orderdesk.container import Container
from orderdesk.core.money import Money
from orderdesk.core.uow import unit_of_work
from orderdesk.idempotency.models import IdempotencyRecord
from orderdesk.orders import service as order_service
from orderdesk.orders.models import Order, OrderStatus
from orderdesk.orders.schemas import OrderCreate
from orderdesk.outbox.models import EventStatus, OutboxEvent
from orderdesk.outbox.scheduler import job_named, run_job
from orderdesk.outbox.service import DONE_EVENT_RETENTION
from orderdesk.users.models import User
from tests.factories import make_account

MINUTE = timedelta(minutes=1)


# --- helpers ---------------------------------------------------------------------------


async def expire_unpaid_orders(c: Container) -> int:
    """The scheduled job, run as the scheduler and beat run it."""
    return await run_job(c, job_named(PERIODIC_JOBS, "expire-unpaid-orders"))


async def purge_expired_records(c: Container) -> int:
    return await run_job(c, job_named(PERIODIC_JOBS, "purge-expired-records"))


async def a_product(c: Container, *, stock: int) -> UUID:
    data = ProductCreate(
        sku=f"PERIODIC-{uuid.uuid4().hex[:12]}",
        name="Periodic mug",
        price=Money(amount=999, currency="EUR"),
        stock=stock,
    )
    async with unit_of_work(c.database) as uow:
        return (await catalog_service.create_product(uow, data=data)).id


async def an_order(c: Container, customer: User, product_id: UUID, quantity: int) -> UUID:
    data = OrderCreate.model_validate(
        {"lines": [{"product_id": str(product_id), "quantity": quantity}]}
    )
    async with unit_of_work(c.database) as uow:
        return (await order_service.place_order(uow, customer=customer, data=data)).id


async def set_order(c: Container, order_id: UUID, **values: Any) -> None:
    async with c.database.sessions() as session:
        await session.exec(sa.update(Order).where(col(Order.id) == order_id).values(**values))
        await session.commit()


async def age_order(c: Container, order_id: UUID, age: timedelta) -> None:
    await set_order(c, order_id, created_at=datetime.now(UTC) - age)


async def order_status(c: Container, order_id: UUID) -> OrderStatus:
    async with c.database.sessions() as session:
        order = await session.get(Order, order_id)
    assert order is not None
    return order.status


async def stock_of(c: Container, product_id: UUID) -> int:
    async with c.database.sessions() as session:
        return int(
            (await session.exec(select(Product.stock).where(Product.id == product_id))).one()
        )


def payment_ttl(c: Container) -> timedelta:
    return timedelta(seconds=c.settings.order_payment_ttl_seconds)


async def add(c: Container, *rows: SQLModel) -> None:
    async with unit_of_work(c.database) as uow:
        uow.session.add_all(rows)


async def exists(c: Container, model: type[SQLModel], row_id: UUID) -> bool:
    async with c.database.sessions() as session:
        return await session.get(model, row_id) is not None


def refresh_token(user: User, expires_at: datetime) -> RefreshToken:
    return RefreshToken(
        user_id=user.id,
        family_id=uuid.uuid4(),
        token_hash=secrets.token_hex(32),
        issued_at=expires_at - timedelta(days=30),
        expires_at=expires_at,
    )


def one_time_token(user: User, expires_at: datetime) -> OneTimeToken:
    return OneTimeToken(
        user_id=user.id,
        purpose=TokenPurpose.RESET_PASSWORD,
        token_hash=secrets.token_hex(32),
        issued_at=expires_at - timedelta(hours=1),
        expires_at=expires_at,
    )


def idempotency_record(user: User, expires_at: datetime) -> IdempotencyRecord:
    return IdempotencyRecord(
        owner_id=user.id,
        key=f"periodic-{uuid.uuid4().hex}",
        fingerprint=secrets.token_hex(32),
        status_code=201,
        response_body=b"{}",
        created_at=expires_at - timedelta(days=1),
        expires_at=expires_at,
    )


def outbox_event(
    status: EventStatus, *, created: datetime, completed: datetime | None = None
) -> OutboxEvent:
    return OutboxEvent(
        topic="test.periodic",
        handler="test.periodic",
        payload={},
        status=status,
        attempts=1,
        available_at=created,
        created_at=created,
        completed_at=completed,
    )


# --- expiring unpaid orders ----------------------------------------------------------------


async def test_an_old_unpaid_order_is_cancelled(container: Container) -> None:
    customer = await make_account(container, Role.CUSTOMER)
    product_id = await a_product(container, stock=10)
    order_id = await an_order(container, customer, product_id, 3)
    await age_order(container, order_id, payment_ttl(container) + MINUTE)

    expired = await expire_unpaid_orders(container)

    assert expired == 1
    assert await order_status(container, order_id) is OrderStatus.CANCELLED


async def test_expiry_returns_the_orders_stock(container: Container) -> None:
    customer = await make_account(container, Role.CUSTOMER)
    product_id = await a_product(container, stock=10)
    order_id = await an_order(container, customer, product_id, 3)
    await age_order(container, order_id, payment_ttl(container) + MINUTE)
    assert await stock_of(container, product_id) == 7

    await expire_unpaid_orders(container)

    assert await stock_of(container, product_id) == 10


async def test_a_young_unpaid_order_keeps_its_stock(container: Container) -> None:
    customer = await make_account(container, Role.CUSTOMER)
    product_id = await a_product(container, stock=10)
    old = await an_order(container, customer, product_id, 3)
    young = await an_order(container, customer, product_id, 2)
    await age_order(container, old, payment_ttl(container) + MINUTE)
    await age_order(container, young, payment_ttl(container) - MINUTE)

    await expire_unpaid_orders(container)

    assert await order_status(container, young) is OrderStatus.PENDING_PAYMENT
    assert await stock_of(container, product_id) == 8


async def test_an_old_paid_order_is_not_expired(container: Container) -> None:
    customer = await make_account(container, Role.CUSTOMER)
    product_id = await a_product(container, stock=10)
    order_id = await an_order(container, customer, product_id, 3)
    await set_order(
        container,
        order_id,
        status=OrderStatus.PAID,
        created_at=datetime.now(UTC) - payment_ttl(container) - timedelta(days=1),
    )

    expired = await expire_unpaid_orders(container)

    assert expired == 0
    assert await order_status(container, order_id) is OrderStatus.PAID
    assert await stock_of(container, product_id) == 7


async def test_expiring_twice_returns_the_stock_once(container: Container) -> None:
    customer = await make_account(container, Role.CUSTOMER)
    product_id = await a_product(container, stock=10)
    order_id = await an_order(container, customer, product_id, 3)
    await age_order(container, order_id, payment_ttl(container) + MINUTE)
    await expire_unpaid_orders(container)

    again = await expire_unpaid_orders(container)

    assert again == 0
    assert await stock_of(container, product_id) == 10


async def test_an_expired_order_tells_its_customer(container: Container) -> None:
    customer = await make_account(container, Role.CUSTOMER)
    product_id = await a_product(container, stock=10)
    order_id = await an_order(container, customer, product_id, 1)
    await age_order(container, order_id, payment_ttl(container) + MINUTE)

    await expire_unpaid_orders(container)

    async with container.database.sessions() as session:
        events = (
            await session.exec(select(OutboxEvent).where(OutboxEvent.topic == "order.cancelled"))
        ).all()
    handlers = {e.handler for e in events if e.payload == {"order_id": str(order_id)}}
    assert "email.order_cancelled" in handlers


# --- purging -------------------------------------------------------------------------------


async def test_expired_refresh_tokens_are_purged_and_live_ones_kept(container: Container) -> None:
    user = await make_account(container, Role.CUSTOMER)
    now = datetime.now(UTC)
    expired, live = refresh_token(user, now - MINUTE), refresh_token(user, now + MINUTE)
    await add(container, expired, live)

    await purge_expired_records(container)

    assert not await exists(container, RefreshToken, expired.id)
    assert await exists(container, RefreshToken, live.id)


async def test_expired_one_time_tokens_are_purged_and_live_ones_kept(
    container: Container,
) -> None:
    user = await make_account(container, Role.CUSTOMER)
    now = datetime.now(UTC)
    expired, live = one_time_token(user, now - MINUTE), one_time_token(user, now + MINUTE)
    await add(container, expired, live)

    await purge_expired_records(container)

    assert not await exists(container, OneTimeToken, expired.id)
    assert await exists(container, OneTimeToken, live.id)


async def test_expired_idempotency_keys_are_purged_and_live_ones_kept(
    container: Container,
) -> None:
    user = await make_account(container, Role.CUSTOMER)
    now = datetime.now(UTC)
    expired = idempotency_record(user, now - MINUTE)
    live = idempotency_record(user, now + MINUTE)
    await add(container, expired, live)

    await purge_expired_records(container)

    assert not await exists(container, IdempotencyRecord, expired.id)
    assert await exists(container, IdempotencyRecord, live.id)


async def test_events_done_more_than_seven_days_ago_are_purged(container: Container) -> None:
    done_at = datetime.now(UTC) - DONE_EVENT_RETENTION - MINUTE
    event = outbox_event(EventStatus.DONE, created=done_at - MINUTE, completed=done_at)
    await add(container, event)

    await purge_expired_records(container)

    assert not await exists(container, OutboxEvent, event.id)


async def test_events_done_within_seven_days_are_kept(container: Container) -> None:
    done_at = datetime.now(UTC) - DONE_EVENT_RETENTION + MINUTE
    event = outbox_event(EventStatus.DONE, created=done_at - MINUTE, completed=done_at)
    await add(container, event)

    await purge_expired_records(container)

    assert await exists(container, OutboxEvent, event.id)


async def test_old_events_that_are_not_done_are_kept(container: Container) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=90)
    unfinished = [
        outbox_event(EventStatus.FAILED, created=long_ago),
        outbox_event(EventStatus.PENDING, created=long_ago),
        outbox_event(EventStatus.RUNNING, created=long_ago),
    ]
    await add(container, *unfinished)

    await purge_expired_records(container)

    for event in unfinished:
        assert await exists(container, OutboxEvent, event.id), event.status


async def test_the_purge_counts_what_it_deleted(container: Container) -> None:
    user = await make_account(container, Role.CUSTOMER)
    now = datetime.now(UTC)
    long_done = now - DONE_EVENT_RETENTION - MINUTE
    await add(
        container,
        refresh_token(user, now - MINUTE),
        refresh_token(user, now + MINUTE),
        one_time_token(user, now - MINUTE),
        idempotency_record(user, now - MINUTE),
        idempotency_record(user, now - MINUTE),
        outbox_event(EventStatus.DONE, created=long_done, completed=long_done),
        outbox_event(EventStatus.DONE, created=now, completed=now),
    )

    purged = await purge_expired_records(container)

    assert purged == 5


async def test_a_purge_with_nothing_expired_deletes_nothing(container: Container) -> None:
    user = await make_account(container, Role.CUSTOMER)
    now = datetime.now(UTC)
    live = refresh_token(user, now + MINUTE)
    await add(container, live)

    purged = await purge_expired_records(container)

    assert purged == 0
    assert await exists(container, RefreshToken, live.id)

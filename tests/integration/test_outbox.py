"""The transactional outbox on both backends: events written with the change that
causes them, leased to runners, retried with backoff, dead-lettered, and listed and
retried by admins over the API and the command line."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from orderdesk.auth.permissions import Role
from orderdesk.bootstrap import build_container
from orderdesk.catalog import service as catalog_service
from orderdesk.catalog.schemas import ProductCreate
from orderdesk.container import Container
from orderdesk.core.money import Money
from orderdesk.core.uow import unit_of_work
from orderdesk.orders import service as order_service
from orderdesk.orders.models import Order
from orderdesk.orders.schemas import OrderCreate
from orderdesk.outbox import repository as outbox_repository
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.models import _BY_TOPIC as SUBSCRIPTIONS
from orderdesk.outbox.models import (
    EventContext,
    EventStatus,
    OutboxEvent,
    emit,
    handler_named,
    handles,
)
from orderdesk.users.models import User
from tests.conftest import DatabaseFactory, drain_outbox, make_settings
from tests.e2e.conftest import run_cli, server_env
from tests.integration.support import create_account, problem, signed_in_as

EVENTS = "/api/v1/admin/events"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"
LEASE = timedelta(seconds=60)

# --- handlers that exist only in this module (the real registry, unique names) ---------

FAILING_TOPIC = "test.topic"
RECOVERING_TOPIC = "test.recovering"
FANOUT_TOPIC = "test.fanout"
SINGLE_TOPIC = "test.single"
STILL_FAILING: set[str] = set()
RUNS: list[tuple[str, str, int]] = []


@handles(FAILING_TOPIC, name="test.failing")
async def always_fails(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    raise RuntimeError(f"boom {payload['token']}")


@handles(RECOVERING_TOPIC, name="test.recovering")
async def fails_until_fixed(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    if payload["token"] in STILL_FAILING:
        raise RuntimeError(f"still broken {payload['token']}")
    RUNS.append(("test.recovering", payload["token"], ctx.attempt))


@handles(SINGLE_TOPIC, name="test.single")
async def only_subscriber(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    RUNS.append(("test.single", payload["token"], ctx.attempt))


@handles(FANOUT_TOPIC, name="test.fanout.first")
async def first_subscriber(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    RUNS.append(("test.fanout.first", payload["token"], ctx.attempt))


@handles(FANOUT_TOPIC, name="test.fanout.second")
async def second_subscriber(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    RUNS.append(("test.fanout.second", payload["token"], ctx.attempt))


OBSERVED_TOPIC = "test.observed"
OBSERVED: dict[str, tuple[int, int, datetime | None]] = {}


@handles(OBSERVED_TOPIC, name="test.observed")
async def looks_at_its_row(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    """Records (its attempt, the row's attempts, the row's lease) while it runs."""
    async with c.database.sessions() as session:
        row = await session.get(OutboxEvent, ctx.event_id)
        assert row is not None
        OBSERVED[payload["token"]] = (ctx.attempt, row.attempts, row.lease_expires_at)


# --- helpers ---------------------------------------------------------------------------


class ManualClock:
    """The clock port, moved by the test: no sleeping for leases and backoff."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


def token() -> str:
    return uuid.uuid4().hex


def later() -> datetime:
    """A moment safely after every event emitted so far."""
    return datetime.now(UTC) + timedelta(seconds=1)


def with_settings(c: Container, **overrides: Any) -> Container:
    return dataclasses.replace(c, settings=make_settings(c.settings.database_url, **overrides))


async def emit_event(c: Container, topic: str, payload: dict[str, Any]) -> list[OutboxEvent]:
    """Emit in a committed unit of work; the rows it wrote."""
    async with unit_of_work(c.database, clock=c.clock) as uow:
        emit(uow, topic, payload)
    return [event for event in await events_of(c, topic) if event.payload == payload]


async def emit_one(c: Container, topic: str, payload: dict[str, Any] | None = None) -> UUID:
    events = await emit_event(c, topic, payload or {"token": token()})
    assert len(events) == 1
    return events[0].id


async def events_of(c: Container, topic: str) -> list[OutboxEvent]:
    async with c.database.sessions() as session:
        statement = select(OutboxEvent).where(OutboxEvent.topic == topic)
        return list((await session.exec(statement.order_by(col(OutboxEvent.id)))).all())


async def stored_event(c: Container, event_id: UUID | str) -> OutboxEvent:
    async with c.database.sessions() as session:
        event = await session.get(OutboxEvent, UUID(str(event_id)))
    assert event is not None
    return event


async def update_event(c: Container, event_id: UUID | str, **values: Any) -> None:
    async with c.database.sessions() as session:
        await session.exec(
            sa.update(OutboxEvent)
            .where(col(OutboxEvent.id) == UUID(str(event_id)))
            .values(**values)
        )
        await session.commit()


async def claim(c: Container, *, now: datetime, limit: int = 100) -> list[UUID]:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        return await outbox_repository.claim_batch(uow.session, now=now, lease=LEASE, limit=limit)


async def dead_letter(c: Container, topic: str = FAILING_TOPIC, payload_token: str = "") -> UUID:
    """An event whose handler failed its only allowed attempt."""
    payload = {"token": payload_token or token()}
    one_attempt = with_settings(c, job_max_attempts=1)
    event_id = await emit_one(one_attempt, topic, payload)
    await drain_outbox(one_attempt)
    assert (await stored_event(c, event_id)).status is EventStatus.FAILED
    return event_id


def subscribers(topic: str) -> set[str]:
    return {spec.name for spec in SUBSCRIPTIONS.get(topic, [])}


async def a_customer_and_a_product(c: Container, *, stock: int = 10) -> tuple[User, UUID]:
    customer = await create_account(c, Role.CUSTOMER)
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


class Abort(Exception):
    """Raised inside a unit of work to make it roll back."""


# --- emit --------------------------------------------------------------------------------


async def test_emit_writes_one_pending_row_per_subscribed_handler(container: Container) -> None:
    payload = {"token": token()}
    before = datetime.now(UTC)

    events = await emit_event(container, FANOUT_TOPIC, payload)

    assert sorted(event.handler for event in events) == ["test.fanout.first", "test.fanout.second"]
    for event in events:
        assert event.status is EventStatus.PENDING
        assert event.attempts == 0
        assert event.payload == payload
        assert before <= event.available_at <= datetime.now(UTC)


async def test_emit_returns_how_many_rows_it_wrote(container: Container) -> None:
    async with unit_of_work(container.database) as uow:
        fanned_out = emit(uow, FANOUT_TOPIC, {"token": token()})
        unheard = emit(uow, "test.nobody-listens", {"token": token()})

    assert (fanned_out, unheard) == (2, 0)


async def test_an_event_nobody_subscribes_to_writes_no_row(container: Container) -> None:
    events = await emit_event(container, "test.nobody-listens", {"token": token()})

    assert events == []


async def test_emit_records_the_request_id_of_the_unit_of_work(container: Container) -> None:
    payload = {"token": token()}
    async with unit_of_work(container.database, request_id="req-outbox-123") as uow:
        emit(uow, FANOUT_TOPIC, payload)

    events = [e for e in await events_of(container, FANOUT_TOPIC) if e.payload == payload]
    assert {event.request_id for event in events} == {"req-outbox-123"}


async def test_placing_an_order_writes_an_order_placed_row_for_each_subscriber(
    container: Container,
) -> None:
    customer, product_id = await a_customer_and_a_product(container)

    async with unit_of_work(container.database) as uow:
        order = await order_service.place_order(uow, customer=customer, data=order_of(product_id))

    rows = [
        event
        for event in await events_of(container, "order.placed")
        if event.payload == {"order_id": str(order.id)}
    ]
    assert "email.order_placed" in subscribers("order.placed")
    assert sorted(event.handler for event in rows) == sorted(subscribers("order.placed"))


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
                select(OutboxEvent).where(OutboxEvent.topic == "order.placed")
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

    rows = await events_of(container, "order.placed")
    assert placed
    assert str(placed[0]) not in {event.payload.get("order_id") for event in rows}
    async with container.database.sessions() as session:
        assert await session.get(Order, placed[0]) is None


async def test_an_event_emitted_in_a_rolled_back_unit_of_work_is_never_written(
    container: Container,
) -> None:
    payload = {"token": token()}

    async def emit_then_fail() -> None:
        async with unit_of_work(container.database) as uow:
            emit(uow, FANOUT_TOPIC, payload)
            await uow.flush()
            raise Abort

    with pytest.raises(Abort):
        await emit_then_fail()

    assert [e for e in await events_of(container, FANOUT_TOPIC) if e.payload == payload] == []


# --- claiming ----------------------------------------------------------------------------


async def test_claim_batch_leases_a_due_event(container: Container) -> None:
    event_id = await emit_one(container, SINGLE_TOPIC)
    now = later()

    claimed = await claim(container, now=now)

    event = await stored_event(container, event_id)
    assert event_id in claimed
    assert event.status is EventStatus.RUNNING
    assert event.lease_expires_at == now + LEASE
    assert event.attempts == 0  # a lease is not an attempt: running the handler is


async def test_claim_batch_skips_an_event_that_is_not_yet_available(container: Container) -> None:
    event_id = await emit_one(container, SINGLE_TOPIC)
    now = later()
    await update_event(container, event_id, available_at=now + timedelta(minutes=5))

    claimed = await claim(container, now=now)

    event = await stored_event(container, event_id)
    assert event_id not in claimed
    assert (event.status, event.attempts) == (EventStatus.PENDING, 0)


async def test_claim_batch_takes_an_event_once_it_becomes_available(container: Container) -> None:
    event_id = await emit_one(container, SINGLE_TOPIC)
    now = later()
    await update_event(container, event_id, available_at=now + timedelta(minutes=5))

    claimed = await claim(container, now=now + timedelta(minutes=5))

    assert event_id in claimed


async def test_a_leased_event_is_not_handed_out_again_while_its_lease_runs(
    container: Container,
) -> None:
    event_id = await emit_one(container, SINGLE_TOPIC)
    now = later()
    await claim(container, now=now)

    again = await claim(container, now=now + LEASE - timedelta(seconds=1))

    assert event_id not in again
    assert (await stored_event(container, event_id)).status is EventStatus.RUNNING


async def test_an_event_whose_lease_expired_is_leased_again(container: Container) -> None:
    event_id = await emit_one(container, SINGLE_TOPIC)
    now = later()
    await claim(container, now=now)
    expired = now + LEASE + timedelta(seconds=1)

    again = await claim(container, now=expired)

    event = await stored_event(container, event_id)
    assert event_id in again
    assert event.status is EventStatus.RUNNING
    assert event.attempts == 0
    assert event.lease_expires_at == expired + LEASE


async def test_claim_batch_takes_at_most_its_limit(container: Container) -> None:
    ids = {await emit_one(container, SINGLE_TOPIC) for _ in range(3)}
    now = later()

    first = await claim(container, now=now, limit=2)
    rest = await claim(container, now=now, limit=2)

    assert len(first) == 2
    assert set(first) | set(rest) == ids
    assert not set(first) & set(rest)


async def test_claim_batch_takes_the_longest_waiting_event_first(container: Container) -> None:
    now = later()
    newer = await emit_one(container, SINGLE_TOPIC)
    older = await emit_one(container, SINGLE_TOPIC)
    await update_event(container, older, available_at=now - timedelta(hours=1))
    await update_event(container, newer, available_at=now - timedelta(minutes=1))

    claimed = await claim(container, now=now, limit=1)

    assert claimed == [older]


@pytest.mark.parametrize("status", [EventStatus.DONE, EventStatus.FAILED])
async def test_finished_and_dead_lettered_events_are_never_claimed(
    container: Container, status: EventStatus
) -> None:
    event_id = await emit_one(container, SINGLE_TOPIC)
    await update_event(container, event_id, status=status)

    claimed = await claim(container, now=later() + timedelta(days=30))

    assert event_id not in claimed


# --- running, retrying, dead-lettering ---------------------------------------------------


async def test_a_handler_that_succeeds_marks_its_event_done(container: Container) -> None:
    payload = {"token": token()}
    events = await emit_event(container, FANOUT_TOPIC, payload)

    await drain_outbox(container)

    ran = {name for name, run_token, _ in RUNS if run_token == payload["token"]}
    assert ran == {"test.fanout.first", "test.fanout.second"}
    for event in events:
        done = await stored_event(container, event.id)
        assert done.status is EventStatus.DONE
        assert done.completed_at is not None
        assert done.lease_expires_at is None


async def test_each_subscriber_runs_with_its_own_attempt_count(container: Container) -> None:
    payload = {"token": token()}
    await emit_event(container, FANOUT_TOPIC, payload)

    await drain_outbox(container)

    assert sorted(run for run in RUNS if run[1] == payload["token"]) == [
        ("test.fanout.first", payload["token"], 1),
        ("test.fanout.second", payload["token"], 1),
    ]


async def test_a_redelivery_of_a_finished_event_runs_nothing(container: Container) -> None:
    payload = {"token": token()}
    event_id = (await emit_event(container, FANOUT_TOPIC, payload))[0].id
    await drain_outbox(container)
    runs_before = [run for run in RUNS if run[1] == payload["token"]]

    completed = await outbox_service.run_event(container, event_id)

    assert completed is False
    assert [run for run in RUNS if run[1] == payload["token"]] == runs_before


async def test_a_failing_handler_schedules_a_retry_after_a_backoff(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(
        with_settings(container, job_backoff_base_seconds=60, job_backoff_max_seconds=600),
        clock=clock,
    )
    payload = {"token": token()}
    event_id = await emit_one(c, FAILING_TOPIC, payload)

    ran = await drain_outbox(c)

    event = await stored_event(c, event_id)
    assert ran == 1
    assert event.status is EventStatus.PENDING
    assert event.attempts == 1
    assert event.last_error is not None
    assert f"boom {payload['token']}" in event.last_error
    assert event.lease_expires_at is None
    assert clock.now() < event.available_at <= clock.now() + timedelta(seconds=60)


async def test_a_failed_event_is_not_retried_before_its_backoff_ends(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(
        with_settings(container, job_backoff_base_seconds=60, job_backoff_max_seconds=600),
        clock=clock,
    )
    event_id = await emit_one(c, FAILING_TOPIC)
    await drain_outbox(c)
    retry_at = (await stored_event(c, event_id)).available_at

    early = await claim(c, now=retry_at - timedelta(milliseconds=1))
    due = await claim(c, now=retry_at)

    assert event_id not in early
    assert event_id in due


async def test_the_backoff_grows_with_each_failure(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(
        with_settings(
            container,
            job_max_attempts=10,
            job_backoff_base_seconds=1,
            job_backoff_max_seconds=10_000,
        ),
        clock=clock,
    )
    event_id = await emit_one(c, FAILING_TOPIC)
    waits = []
    for _ in range(8):
        await drain_outbox(c)
        event = await stored_event(c, event_id)
        waits.append((event.available_at - clock.now()).total_seconds())
        clock.current = event.available_at

    # Full jitter: each wait is below its own ceiling 2^(n-1), and the later ones are,
    # together, far above what the early ceilings allow.
    assert all(0 <= wait <= 2 ** (n - 1) for n, wait in enumerate(waits, start=1))
    assert sum(waits[5:]) > sum(2 ** (n - 1) for n in range(1, 4))


async def test_a_failing_event_is_dead_lettered_after_job_max_attempts(
    container: Container,
) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, job_max_attempts=3), clock=clock)
    event_id = await emit_one(c, FAILING_TOPIC)
    statuses = []

    for _ in range(3):
        assert await drain_outbox(c) == 1
        statuses.append((await stored_event(c, event_id)).status)
        clock.advance(timedelta(hours=1))

    event = await stored_event(c, event_id)
    assert statuses == [EventStatus.PENDING, EventStatus.PENDING, EventStatus.FAILED]
    assert event.attempts == 3
    assert event.last_error is not None
    assert "boom" in event.last_error
    assert event.completed_at is None


async def test_a_dead_lettered_event_is_not_run_again_by_the_relay(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, job_max_attempts=1), clock=clock)
    event_id = await emit_one(c, FAILING_TOPIC)
    await drain_outbox(c)
    clock.advance(timedelta(days=30))

    ran = await drain_outbox(c)

    event = await stored_event(c, event_id)
    assert ran == 0
    assert (event.status, event.attempts) == (EventStatus.FAILED, 1)


async def test_running_a_handler_counts_the_attempt_and_renews_the_lease(
    container: Container,
) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, job_lease_seconds=60), clock=clock)
    payload = {"token": token()}
    event_id = await emit_one(c, OBSERVED_TOPIC, payload)
    await claim(c, now=clock.now())
    clock.advance(timedelta(seconds=45))  # it waited in a queue for most of its lease

    completed = await outbox_service.run_event(c, event_id)

    assert completed is True
    assert OBSERVED[payload["token"]] == (1, 1, clock.now() + timedelta(seconds=60))
    assert (await stored_event(c, event_id)).attempts == 1


async def test_an_event_leased_again_and_again_keeps_its_whole_retry_budget(
    container: Container,
) -> None:
    # A long broker queue: the event's lease runs out five times before any handler
    # takes it, and each time a relay leases (and publishes) it again.
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, job_max_attempts=3), clock=clock)
    event_id = await emit_one(c, FAILING_TOPIC)
    for _ in range(5):
        assert event_id in await claim(c, now=clock.now())
        clock.advance(LEASE + timedelta(seconds=1))
    assert (await stored_event(c, event_id)).attempts == 0

    statuses = []
    for _ in range(3):
        assert await drain_outbox(c) == 1
        statuses.append((await stored_event(c, event_id)).status)
        clock.advance(timedelta(hours=1))

    assert statuses == [EventStatus.PENDING, EventStatus.PENDING, EventStatus.FAILED]
    assert (await stored_event(c, event_id)).attempts == 3


async def test_an_event_for_an_unknown_handler_fails_with_the_reason(
    container: Container,
) -> None:
    now = datetime.now(UTC)
    event = OutboxEvent(
        topic="test.orphan",
        handler="test.no-such-handler",
        payload={},
        available_at=now,
        created_at=now,
    )
    async with unit_of_work(container.database) as uow:
        uow.session.add(event)

    await drain_outbox(container)

    stored = await stored_event(container, event.id)
    assert handler_named("test.no-such-handler") is None
    assert stored.status is EventStatus.PENDING
    assert stored.attempts == 1
    assert stored.last_error is not None
    assert "test.no-such-handler" in stored.last_error


# --- the admin API -----------------------------------------------------------------------


@pytest.fixture
async def admin(client: httpx.AsyncClient, container: Container) -> dict[str, str]:
    return (await signed_in_as(client, container, Role.ADMIN))[1]


async def test_admins_list_dead_lettered_events(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)
    pending = await emit_one(container, SINGLE_TOPIC)

    response = await client.get(EVENTS, params={"status": "failed"}, headers=admin)

    assert response.status_code == 200, response.text
    items = {item["id"]: item for item in response.json()["items"]}
    assert str(failed) in items
    assert str(pending) not in items
    assert all(item["status"] == "failed" for item in items.values())
    listed = items[str(failed)]
    assert listed["topic"] == FAILING_TOPIC
    assert listed["handler"] == "test.failing"
    assert listed["attempts"] == 1
    assert "boom" in listed["last_error"]


async def test_admins_list_pending_events_by_status(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)
    pending = await emit_one(container, SINGLE_TOPIC)

    response = await client.get(EVENTS, params={"status": "pending"}, headers=admin)

    ids = {item["id"] for item in response.json()["items"]}
    assert str(pending) in ids
    assert str(failed) not in ids


async def test_the_event_list_pages_with_a_cursor(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = {str(await dead_letter(container)) for _ in range(3)}

    first = await client.get(EVENTS, params={"status": "failed", "limit": 2}, headers=admin)
    cursor = first.json()["next_cursor"]
    second = await client.get(
        EVENTS, params={"status": "failed", "limit": 2, "cursor": cursor}, headers=admin
    )

    assert len(first.json()["items"]) == 2
    assert cursor is not None
    seen = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert len(seen) == len(set(seen))
    assert failed <= set(seen)


@pytest.mark.parametrize("role", [Role.STAFF, Role.CUSTOMER])
async def test_only_admins_may_list_events(
    client: httpx.AsyncClient, container: Container, role: Role
) -> None:
    _, headers = await signed_in_as(client, container, role)

    response = await client.get(EVENTS, params={"status": "failed"}, headers=headers)

    assert response.status_code == 403
    assert problem(response)["code"]


async def test_listing_events_needs_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    response = await client.get(EVENTS, params={"status": "failed"})

    assert response.status_code == 401


async def test_retrying_a_dead_letter_gives_it_fresh_attempts(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)

    response = await client.post(f"{EVENTS}/{failed}/retry", headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(failed)
    assert body["status"] == "pending"
    assert body["attempts"] == 0


async def test_a_retried_dead_letter_runs_again_and_completes(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    key = token()
    STILL_FAILING.add(key)
    failed = await dead_letter(container, RECOVERING_TOPIC, key)
    STILL_FAILING.discard(key)  # the cause is fixed; the admin retries

    response = await client.post(f"{EVENTS}/{failed}/retry", headers=admin)

    event = await stored_event(container, failed)
    assert response.status_code == 200
    assert event.status is EventStatus.DONE
    assert event.last_error is None
    assert ("test.recovering", key, 1) in RUNS


async def test_a_retried_dead_letter_that_fails_again_counts_from_one(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)

    await client.post(f"{EVENTS}/{failed}/retry", headers=admin)

    # The client runs the outbox after the request: the handler failed once more.
    event = await stored_event(container, failed)
    assert (event.status, event.attempts) == (EventStatus.PENDING, 1)


@pytest.mark.parametrize("status", [EventStatus.PENDING, EventStatus.RUNNING, EventStatus.DONE])
async def test_only_a_dead_letter_can_be_retried(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str], status: EventStatus
) -> None:
    event_id = await emit_one(container, SINGLE_TOPIC)
    await update_event(
        container,
        event_id,
        status=status,
        attempts=1,
        available_at=later() + timedelta(hours=1),  # out of the test client's relay's way
    )

    response = await client.post(f"{EVENTS}/{event_id}/retry", headers=admin)

    assert response.status_code == 409
    assert problem(response)["code"] == "event_not_failed"
    event = await stored_event(container, event_id)
    assert (event.status, event.attempts) == (status, 1)


async def test_retrying_an_unknown_event_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(f"{EVENTS}/{UNKNOWN_ID}/retry", headers=admin)

    assert response.status_code == 404
    assert problem(response)["code"] == "event_not_found"


@pytest.mark.parametrize("role", [Role.STAFF, Role.CUSTOMER])
async def test_only_admins_may_retry_events(
    client: httpx.AsyncClient, container: Container, role: Role
) -> None:
    _, headers = await signed_in_as(client, container, role)
    failed = await dead_letter(container)

    response = await client.post(f"{EVENTS}/{failed}/retry", headers=headers)

    assert response.status_code == 403
    assert (await stored_event(container, failed)).status is EventStatus.FAILED


# --- the command line, on a real database ------------------------------------------------


@pytest.fixture(scope="module")
async def cli_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create_migrated(backend)


@pytest.fixture(scope="module")
def cli_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("events-cli")


@pytest.fixture
def cli_env(cli_database_url: str) -> dict[str, str]:
    # A wide terminal, so the table prints whole ids.
    return {**server_env(cli_database_url), "COLUMNS": "250"}


@asynccontextmanager
async def real_container(database_url: str) -> AsyncIterator[Container]:
    container = build_container(make_settings(database_url))
    try:
        yield container
    finally:
        await container.close()


async def orderdesk(env: dict[str, str], workdir: Path, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(run_cli, env, workdir, *args)
    return result.returncode, result.stdout + result.stderr


async def test_events_list_shows_dead_letters(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        failed = await dead_letter(c)
        pending = await emit_one(c, SINGLE_TOPIC)

    code, output = await orderdesk(cli_env, cli_workdir, "events", "list")

    assert code == 0, output
    assert str(failed) in output
    assert "test.failing" in output
    assert str(pending) not in output


async def test_events_list_filters_by_status(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        failed = await dead_letter(c)
        pending = await emit_one(c, SINGLE_TOPIC)

    code, output = await orderdesk(
        cli_env, cli_workdir, "events", "list", "--status", "pending", "--limit", "200"
    )

    assert code == 0, output
    assert str(pending) in output
    assert str(failed) not in output


async def test_events_retry_queues_a_dead_letter_again(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        failed = await dead_letter(c)

    code, output = await orderdesk(cli_env, cli_workdir, "events", "retry", str(failed))

    assert code == 0, output
    assert "queued again" in output
    async with real_container(cli_database_url) as c:
        event = await stored_event(c, failed)
    assert (event.status, event.attempts) == (EventStatus.PENDING, 0)


async def test_events_retry_refuses_an_event_that_is_not_dead(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        event_id = await emit_one(c, SINGLE_TOPIC)

    code, output = await orderdesk(cli_env, cli_workdir, "events", "retry", str(event_id))

    assert code == 1
    assert "cannot retry" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("event_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_events_retry_refuses_an_unknown_id_readably(
    cli_env: dict[str, str], cli_workdir: Path, event_id: str
) -> None:
    code, output = await orderdesk(cli_env, cli_workdir, "events", "retry", event_id)

    assert code == 1
    assert "cannot retry" in output
    assert "Traceback" not in output

"""The relay loop against real databases and real engines (no shared test
connection: the loop runs concurrently with the test): the in-process runner takes
the next batch as soon as it has room, not one relay interval later; the Celery
runner's relays keep at most `relay_max_in_flight` events leased, across relays, and
re-lease a lost one once its lease has run out without counting an attempt."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import pytest
import sqlalchemy as sa
from celery import Celery
from sqlmodel import col, select

from orderdesk.bootstrap import build_container
from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.events import Event
from orderdesk.outbox.models import EventStatus, OutboxEvent
from orderdesk.outbox.runners import InProcessRunner, relay_loop
from orderdesk.outbox.wiring import EventContext
from orderdesk.outbox.worker import RUN_EVENT, CeleryRunner
from tests.fakes import InstallHandlers, ManualClock
from tests.helpers import DatabaseFactory, make_settings

GATES: dict[str, asyncio.Event] = {}
STARTED: list[str] = []  # "<gate>:<n>" per handler start


class Blocking(Event):
    topic = "test.relay.blocking"

    gate: str
    n: int


class Queued(Event):
    topic = "test.relay.queued"

    n: int


async def waits_for_its_gate(c: Container, event: Blocking, ctx: EventContext) -> None:
    STARTED.append(f"{event.gate}:{event.n}")
    await GATES[event.gate].wait()


async def never_runs_here(c: Container, event: Queued, ctx: EventContext) -> None:
    raise AssertionError("the Celery tests publish events; nothing runs them")


@pytest.fixture(autouse=True)
def relay_handlers(handler_table: InstallHandlers) -> None:
    handler_table(
        {
            Blocking: {"test.relay.blocking": waits_for_its_gate},
            Queued: {"test.relay.queued": never_runs_here},
        }
    )


class RecordingCelery:
    """Stands in for the Celery app: records what the runner publishes, runs nothing
    (a worker that never gets to the queue)."""

    def __init__(self) -> None:
        self.published: list[UUID] = []

    def send_task(self, name: str, args: tuple[str]) -> None:
        assert name == RUN_EVENT
        self.published.append(UUID(args[0]))


# --- fixtures and helpers --------------------------------------------------------------


@pytest.fixture(scope="module")
async def relay_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create_migrated(backend)


@pytest.fixture
async def new_container(
    relay_database_url: str,
) -> AsyncIterator[Callable[..., Awaitable[Container]]]:
    """Containers on the module's database with their own engines, emptied of events."""
    made: list[Container] = []

    async def make(**settings: Any) -> Container:
        c = build_container(make_settings(relay_database_url, **settings))
        made.append(c)
        async with unit_of_work(c.database) as uow:
            await uow.session.exec(sa.delete(OutboxEvent))
        return c

    yield make
    for c in made:
        await c.close()


async def emit_many(c: Container, events: list[Event]) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        for event in events:
            outbox_service.emit(uow, event)


async def statuses(c: Container) -> dict[UUID, EventStatus]:
    async with c.database.sessions() as session:
        rows = (await session.exec(select(OutboxEvent.id, OutboxEvent.status))).all()
    return dict(rows)


async def live_leases(c: Container, now: datetime) -> set[UUID]:
    async with c.database.sessions() as session:
        statement = select(OutboxEvent.id).where(
            col(OutboxEvent.status) == EventStatus.RUNNING,
            col(OutboxEvent.lease_expires_at) >= now,
        )
        return set((await session.exec(statement)).all())


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` (what the loop wrote to the database) until it holds."""
    while True:
        if await check():
            return
        await asyncio.sleep(0.02)


# --- the in-process runner ---------------------------------------------------------------


async def test_a_full_in_process_runner_takes_the_next_batch_as_soon_as_it_has_room(
    new_container: Callable[..., Awaitable[Container]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two handlers at a time, four leased at most; a relay interval far longer than
    # the test may take: only room freeing up can bring the second batch in time.
    c = await new_container(handler_concurrency=2, relay_interval_seconds=30)
    gate = uuid.uuid4().hex
    GATES[gate] = asyncio.Event()
    await emit_many(c, [Blocking(gate=gate, n=n) for n in range(8)])
    rounds = 0
    relay = outbox_service.relay

    async def counted_relay(*args: Any, **kwargs: Any) -> outbox_service.Relayed:
        nonlocal rounds
        rounds += 1
        return await relay(*args, **kwargs)

    monkeypatch.setattr(outbox_service, "relay", counted_relay)
    runner = InProcessRunner(c)
    loop = relay_loop(c, runner)
    loop.start()
    try:
        async with asyncio.timeout(10):
            await until(lambda: _running(c, 4))
            rounds_while_full = rounds
            await asyncio.sleep(0.2)
            # Full: the relay waits for room instead of asking the database.
            assert rounds == rounds_while_full
            assert (
                sorted((await statuses(c)).values())
                == [EventStatus.PENDING] * 4 + [EventStatus.RUNNING] * 4
            )

            GATES[gate].set()
            await until(lambda: _all_done(c, 8))
    finally:
        await loop.stop()
        GATES[gate].set()
        await runner.drain()

    assert sorted(s for s in STARTED if s.startswith(gate)) == sorted(
        f"{gate}:{n}" for n in range(8)
    )


async def _running(c: Container, n: int) -> bool:
    return list((await statuses(c)).values()).count(EventStatus.RUNNING) == n


async def _all_done(c: Container, n: int) -> bool:
    return list((await statuses(c)).values()).count(EventStatus.DONE) == n


async def test_an_idle_relay_polls_once_per_interval(
    new_container: Callable[..., Awaitable[Container]], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await new_container(relay_interval_seconds=30)
    rounds = 0
    relay = outbox_service.relay

    async def counted_relay(*args: Any, **kwargs: Any) -> outbox_service.Relayed:
        nonlocal rounds
        rounds += 1
        return await relay(*args, **kwargs)

    monkeypatch.setattr(outbox_service, "relay", counted_relay)
    runner = InProcessRunner(c)
    loop = relay_loop(c, runner)
    loop.start()
    try:
        await asyncio.sleep(0.3)
    finally:
        await loop.stop()

    assert rounds == 1


# --- the Celery runner: what is leased and not done is bounded ------------------------------


def celery_runner(c: Container) -> tuple[CeleryRunner, RecordingCelery]:
    broker = RecordingCelery()
    return CeleryRunner(cast(Celery, broker), c.settings), broker


async def test_the_celery_relay_keeps_at_most_max_in_flight_events_leased(
    new_container: Callable[..., Awaitable[Container]],
) -> None:
    c = await new_container(relay_max_in_flight=5, relay_batch_size=3, relay_interval_seconds=30)
    await emit_many(c, [Queued(n=n) for n in range(12)])
    runner, broker = celery_runner(c)
    loop = relay_loop(c, runner)
    loop.start()
    try:
        async with asyncio.timeout(10):
            await until(lambda: _published(broker, 5))
            await asyncio.sleep(0.3)  # a few more rounds: nothing more may go out
            assert len(broker.published) == 5
            assert await live_leases(c, datetime.now(UTC)) == set(broker.published)

            # Two finish: two more are leased and published, never more than five.
            finished = broker.published[:2]
            await _finish(c, finished)
            await until(lambda: _published(broker, 7))
            await asyncio.sleep(0.3)
            assert len(broker.published) == 7
            assert len(set(broker.published)) == 7
            assert len(await live_leases(c, datetime.now(UTC))) == 5
    finally:
        await loop.stop()


async def _published(broker: RecordingCelery, n: int) -> bool:
    return len(broker.published) >= n


async def _finish(c: Container, ids: list[UUID]) -> None:
    async with unit_of_work(c.database) as uow:
        await uow.session.exec(
            sa.update(OutboxEvent)
            .where(col(OutboxEvent.id).in_(ids))
            .values(status=EventStatus.DONE, lease_expires_at=None)
        )


async def test_relays_running_at_once_share_the_in_flight_bound(
    new_container: Callable[..., Awaitable[Container]],
) -> None:
    c = await new_container(relay_max_in_flight=5)
    await emit_many(c, [Queued(n=n) for n in range(40)])
    published: list[UUID] = []

    async def dispatch(ids: list[UUID]) -> None:
        published.extend(ids)

    rounds = await asyncio.gather(
        *(outbox_service.relay(c, dispatch, limit=5, max_in_flight=5) for _ in range(6))
    )

    assert sum(r.leased for r in rounds) == 5
    assert len(set(published)) == 5


async def test_events_lost_with_their_worker_are_leased_again_without_an_attempt(
    new_container: Callable[..., Awaitable[Container]],
) -> None:
    clock = ManualClock(datetime.now(UTC) + timedelta(seconds=1))
    c = dataclasses.replace(
        await new_container(relay_max_in_flight=4, event_lease_seconds=60), clock=clock
    )
    await emit_many(c, [Queued(n=n) for n in range(4)])
    runner, broker = celery_runner(c)
    limit = runner.capacity()

    first = await outbox_service.relay(c, runner.dispatch, limit=limit, max_in_flight=4)
    held = await outbox_service.relay(c, runner.dispatch, limit=limit, max_in_flight=4)
    clock.current += timedelta(seconds=61)  # the worker died with all four
    again = await outbox_service.relay(c, runner.dispatch, limit=limit, max_in_flight=4)

    assert (first.leased, held.room, again.leased) == (4, 0, 4)
    assert len(broker.published) == 8
    assert set(broker.published[:4]) == set(broker.published[4:])
    async with c.database.sessions() as session:
        attempts = (await session.exec(select(OutboxEvent.attempts))).all()
    assert list(attempts) == [0, 0, 0, 0]

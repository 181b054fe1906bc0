"""Test events and their handlers (installed per test through the `handler_table`
fixture: `probes` in this folder's conftest), and helpers that emit, claim and look
at outbox rows."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.outbox import repository as outbox_repository
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.events import Event
from orderdesk.outbox.models import EventStatus, OutboxEvent
from orderdesk.outbox.wiring import EventContext, Handler
from tests.helpers import drain_outbox, make_settings

LEASE = timedelta(seconds=60)
STILL_FAILING: set[str] = set()
RUNS: list[tuple[str, str, int]] = []
OBSERVED: dict[str, tuple[int, int, datetime | None]] = {}


class Probe(Event):
    token: str


class Failing(Probe):
    topic = "test.topic"


class Recovering(Probe):
    topic = "test.recovering"


class Fanout(Probe):
    topic = "test.fanout"


class Single(Probe):
    topic = "test.single"


class Observed(Probe):
    topic = "test.observed"


class Unheard(Probe):
    topic = "test.nobody-listens"


async def always_fails(c: Container, event: Probe, ctx: EventContext) -> None:
    raise RuntimeError(f"boom {event.token}")


async def fails_until_fixed(c: Container, event: Probe, ctx: EventContext) -> None:
    if event.token in STILL_FAILING:
        raise RuntimeError(f"still broken {event.token}")
    RUNS.append(("test.recovering", event.token, ctx.attempt))


def records_as(name: str) -> Handler[Probe]:
    async def run(c: Container, event: Probe, ctx: EventContext) -> None:
        RUNS.append((name, event.token, ctx.attempt))

    return run


async def looks_at_its_row(c: Container, event: Probe, ctx: EventContext) -> None:
    """Records (its attempt, the row's attempts, the row's lease) while it runs."""
    async with c.database.sessions() as session:
        row = await session.get(OutboxEvent, ctx.event_id)
        assert row is not None
        OBSERVED[event.token] = (ctx.attempt, row.attempts, row.lease_expires_at)


PROBE_HANDLERS: dict[type[Event], dict[str, Handler[Any]]] = {
    Failing: {"test.failing": always_fails},
    Recovering: {"test.recovering": fails_until_fixed},
    Single: {"test.single": records_as("test.single")},
    Fanout: {
        "test.fanout.first": records_as("test.fanout.first"),
        "test.fanout.second": records_as("test.fanout.second"),
    },
    Observed: {"test.observed": looks_at_its_row},
}


def token() -> str:
    return uuid.uuid4().hex


def later() -> datetime:
    """A moment safely after every event emitted so far."""
    return datetime.now(UTC) + timedelta(seconds=1)


def with_settings(c: Container, **overrides: Any) -> Container:
    return dataclasses.replace(c, settings=make_settings(c.settings.database_url, **overrides))


async def emit_event(c: Container, event: Event) -> list[OutboxEvent]:
    """Emit in a committed unit of work; the rows it wrote."""
    async with unit_of_work(c.database, clock=c.clock) as uow:
        outbox_service.emit(uow, event)
    return [row for row in await events_of(c, event.topic) if row.payload == event.payload()]


async def emit_one(c: Container, event_type: type[Probe], event_token: str = "") -> UUID:
    rows = await emit_event(c, event_type(token=event_token or token()))
    assert len(rows) == 1
    return rows[0].id


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


async def dead_letter(
    c: Container, event_type: type[Probe] = Failing, payload_token: str = ""
) -> UUID:
    """An event whose handler failed its only allowed attempt."""
    one_attempt = with_settings(c, event_max_attempts=1)
    event_id = await emit_one(one_attempt, event_type, payload_token)
    await drain_outbox(one_attempt)
    assert (await stored_event(c, event_id)).status is EventStatus.FAILED
    return event_id

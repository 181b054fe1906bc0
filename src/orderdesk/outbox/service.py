"""The outbox's use cases: `emit` (in the emitter's transaction), `finish` (in a
handler's), the relay that leases due events to a runner, the execution of one
event with retries, backoff and a dead-letter state, and the dead-letter admin.

`emit` fans an event out to one row per handler in the installed table
(`orderdesk.outbox.wiring`), so each consumer (an e-mail, a webhook fan-out)
succeeds, retries and dead-letters on its own."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from orderdesk.container import Container
from orderdesk.core.errors import Conflict, NotFound
from orderdesk.core.pagination import Page, decode_id_cursor, page_by_id
from orderdesk.core.reads import ReplicaReads
from orderdesk.core.uow import UnitOfWork, unit_of_work
from orderdesk.outbox import repository as outbox_repository
from orderdesk.outbox.events import Event
from orderdesk.outbox.models import EventStatus
from orderdesk.outbox.schemas import EventPublic
from orderdesk.outbox.wiring import EventContext, installed

log = structlog.get_logger("orderdesk.outbox")
Dispatch = Callable[[list[UUID]], Awaitable[None]]


class EventNotFound(NotFound):
    code = "event_not_found"
    title = "No such event"


class EventNotFailed(Conflict):
    code = "event_not_failed"
    title = "Only dead-lettered events can be retried"


def emit(uow: UnitOfWork, event: Event) -> int:
    """Record `event` for every handler of its type, in the caller's transaction;
    how many rows that is."""
    names = [consumer.name for consumer in installed().consumers_of(type(event))]
    outbox_repository.stage_events(uow, topic=event.topic, handlers=names, payload=event.payload())
    return len(names)


async def finish(uow: UnitOfWork, ctx: EventContext, *, now: datetime) -> None:
    """Mark the handler's event done in the handler's own unit of work, with the
    record of its effect: both commit together or neither does, and the runner has
    no transaction of its own left to run for the event."""
    await outbox_repository.mark_done(uow.session, ctx.event_id, now=now)
    ctx.finished = True


@dataclass(frozen=True, slots=True)
class Relayed:
    """One relay round: how many events it could lease (`room`, after the in-flight
    bound) and how many it leased."""

    room: int
    leased: int


async def relay(
    c: Container, dispatch: Dispatch, *, limit: int, max_in_flight: int | None = None
) -> Relayed:
    """Lease up to `limit` due events and hand them to the runner. Leasing commits
    first: if the process dies after that, the lease runs out and another relay
    takes the events again.

    With `max_in_flight`, the events already leased and not finished (running with a
    live lease, counted over every relay) count against it: a broker queue holds no
    more than workers start within a lease, so nothing is leased twice while it waits
    in the queue. On PostgreSQL relays with a bound take turns (a transaction-scoped
    advisory lock) so that the count holds; on SQLite the write lock does that."""
    async with unit_of_work(c.database, clock=c.clock) as uow:
        now = uow.now()
        room = limit
        if max_in_flight is not None:
            await outbox_repository.serialize_bounded_relays(uow.session)
            in_flight = await outbox_repository.count_in_flight(uow.session, now=now)
            room = max(0, min(limit, max_in_flight - in_flight))
        ids = (
            await outbox_repository.claim_batch(
                uow.session,
                now=now,
                lease=timedelta(seconds=c.settings.event_lease_seconds),
                limit=room,
            )
            if room
            else []
        )
    if ids:
        await dispatch(ids)
    return Relayed(room=room, leased=len(ids))


async def relay_once(c: Container, dispatch: Dispatch, *, limit: int | None = None) -> int:
    """Lease one batch of due events, hand it to the runner; how many it leased."""
    relayed = await relay(c, dispatch, limit=limit or c.settings.relay_batch_size)
    return relayed.leased


async def run_event(c: Container, event_id: UUID) -> bool:
    """Run one leased event's handler; True when it completed.

    Starting counts the attempt and renews the lease, in one statement that also
    reads the event: an event leased again and again while it waited (a long broker
    queue) keeps its whole retry budget, and one that has started is not leased
    again while its handler runs within the lease.

    No transaction is held while the handler runs. If the lease runs out meanwhile
    and another runner takes the event too, the handler's idempotency key makes the
    second run a no-op.

    A process with no handler table raises `HandlersNotInstalled` before touching
    the event: that is a bug in the process, not a failure of the event, and must
    not use up its attempts."""
    handlers = installed()
    try:
        async with unit_of_work(c.database, clock=c.clock) as uow:
            started = await outbox_repository.start(
                uow.session,
                event_id,
                now=uow.now(),
                lease=timedelta(seconds=c.settings.event_lease_seconds),
            )
        if started is None:
            return False  # finished meanwhile, or never leased
        context = EventContext(
            event_id=event_id,
            topic=started.topic,
            attempt=started.attempts,
            request_id=started.request_id,
        )
        structlog.contextvars.bind_contextvars(
            request_id=context.request_id, event_id=str(event_id), handler=started.handler
        )
        consumer = handlers.named(started.handler)
        if consumer is None:
            raise LookupError(f"no handler named {started.handler!r}")
        if consumer.event_type.topic != started.topic:
            raise LookupError(
                f"handler {started.handler!r} takes {consumer.event_type.topic!r}, "
                f"not {started.topic!r}"
            )
        event = consumer.event_type.from_payload(started.payload)
        await consumer.run(c, event, context)
        if not context.finished:
            async with unit_of_work(c.database, clock=c.clock) as uow:
                await outbox_repository.mark_done(uow.session, event_id, now=uow.now())
        log.info("event_done", attempt=context.attempt)
        return True
    except Exception as exc:
        log.warning("event_failed", error=repr(exc)[:500])
        await _record_failure(c, event_id, error=repr(exc))
        return False
    finally:
        structlog.contextvars.unbind_contextvars("event_id", "handler")


async def _record_failure(c: Container, event_id: UUID, *, error: str) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        event = await outbox_repository.get(uow.session, event_id)
        if event is None or event.status != EventStatus.RUNNING:
            return
        event.last_error = error[:2000]
        event.lease_expires_at = None
        if event.attempts >= c.settings.event_max_attempts:
            event.status = EventStatus.FAILED
            log.error("event_dead_lettered", event_id=str(event_id), attempts=event.attempts)
            return
        event.status = EventStatus.PENDING
        event.available_at = uow.now() + backoff(
            event.attempts,
            base=c.settings.event_backoff_base_seconds,
            cap=c.settings.event_backoff_max_seconds,
        )


def backoff(attempt: int, *, base: float, cap: float) -> timedelta:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(n-1))],
    so retries from many failures spread out instead of arriving together."""
    # The exponent is bounded so huge attempt counts stay at the cap instead of
    # overflowing the float.
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))
    return timedelta(seconds=random.uniform(0, ceiling))  # noqa: S311 - not security


async def list_events(
    reads: ReplicaReads, *, status: EventStatus | None, limit: int, cursor: str | None
) -> Page[EventPublic]:
    after = decode_id_cursor(cursor, kind="events")
    async with reads.session() as session:
        rows = await outbox_repository.list_page(session, status=status, limit=limit, after=after)
    return page_by_id(rows, limit=limit, item=EventPublic.from_event, kind="events")


async def retry_event(uow: UnitOfWork, *, event_id: UUID) -> EventPublic:
    """Give a dead-lettered event a fresh set of attempts."""
    event = await outbox_repository.get(uow.session, event_id)
    if event is None:
        raise EventNotFound()
    if event.status != EventStatus.FAILED:
        raise EventNotFailed()
    event.status = EventStatus.PENDING
    event.attempts = 0
    event.available_at = uow.now()
    await uow.flush()
    return EventPublic.from_event(event)


# How long finished events are kept (for the admin list and for debugging).
DONE_EVENT_RETENTION = timedelta(days=7)


async def purge_done_events(uow: UnitOfWork) -> int:
    """Delete events finished more than `DONE_EVENT_RETENTION` ago; how many."""
    return await outbox_repository.purge_done(uow.session, before=uow.now() - DONE_EVENT_RETENTION)

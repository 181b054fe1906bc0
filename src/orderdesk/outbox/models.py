"""The transactional outbox: every side effect that leaves the process starts as a row
written in the same transaction as the change that causes it.

`emit()` fans an event out to one row per subscribed handler, so each consumer
(an e-mail, a webhook fan-out) succeeds, retries and dead-letters on its own. The
relay (`orderdesk.jobs`) hands rows to a runner; a row is the record of what is
done, not the broker.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.ids import new_id
from orderdesk.core.models import Entity, UTCDateTime

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from orderdesk.container import Container
    from orderdesk.core.uow import UnitOfWork
    from orderdesk.outbox.events import Event


class EventStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class OutboxEvent(Entity, table=True):
    __tablename__ = "outbox_events"
    __table_args__ = (sa.Index("ix_outbox_events_status_available_at", "status", "available_at"),)

    topic: str = Field(max_length=64, nullable=False)
    handler: str = Field(max_length=64, nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    status: EventStatus = Field(
        default=EventStatus.PENDING,
        sa_type=sa.Enum(
            EventStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    attempts: int = Field(default=0, nullable=False)
    available_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=2000)
    request_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


_events = OutboxEvent.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class EventContext:
    event_id: UUID
    topic: str
    attempt: int
    request_id: str | None
    # Set by `finish`: the handler marked its event done in its own transaction.
    finished: bool = False


# A handler opens its own units of work: no transaction (and on SQLite no write lock)
# is held while it talks to the outside world.
Handler = Callable[["Container", dict[str, Any], EventContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    name: str
    topic: str
    run: Handler


_BY_TOPIC: dict[str, list[HandlerSpec]] = defaultdict(list)
_BY_NAME: dict[str, HandlerSpec] = {}
# Modules whose import subscribes handlers. Loaded before the first emit or lookup,
# so no process can write an event without knowing all of its consumers.
HANDLER_MODULES = ("orderdesk.notifications.handlers", "orderdesk.webhooks.handlers")
_loaded = False


def load_handlers() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in HANDLER_MODULES:
            importlib.import_module(module)


def handles(topic: str, *, name: str) -> Callable[[Handler], Handler]:
    """Subscribe a handler to a topic. Handlers must be idempotent: an event may be
    delivered twice, its effect must happen once."""

    def register(run: Handler) -> Handler:
        if name in _BY_NAME and _BY_NAME[name].run is not run:
            raise ValueError(f"handler name {name!r} is taken")
        spec = HandlerSpec(name=name, topic=topic, run=run)
        if name not in _BY_NAME:
            _BY_TOPIC[topic].append(spec)
        _BY_NAME[name] = spec
        return run

    return register


def handler_named(name: str) -> HandlerSpec | None:
    load_handlers()
    return _BY_NAME.get(name)


_MARK_DONE = (
    sa.update(_events)
    .where(_events.c.id == sa.bindparam("event_id"), _events.c.status != EventStatus.DONE)
    .values(
        status=EventStatus.DONE,
        completed_at=sa.bindparam("now"),
        lease_expires_at=None,
        last_error=None,
    )
)


async def mark_done(session: AsyncSession, event_id: UUID, *, now: datetime) -> None:
    await session.exec(_MARK_DONE, params={"event_id": event_id, "now": now})


async def finish(uow: UnitOfWork, ctx: EventContext, *, now: datetime) -> None:
    """Mark the handler's event done in the handler's own unit of work, with the
    record of its effect: both commit together or neither does, and the runner has
    no transaction of its own left to run for the event."""
    await mark_done(uow.session, ctx.event_id, now=now)
    ctx.finished = True


def emit(uow: UnitOfWork, event: Event) -> int:
    """Record `event` for every handler of its type, in the caller's transaction."""
    load_handlers()
    now = uow.now()
    topic, payload = event.topic, event.payload()
    specs = _BY_TOPIC.get(topic, [])
    for spec in specs:
        uow.stage(
            _events,
            {
                "id": new_id(),
                "topic": topic,
                "handler": spec.name,
                "payload": payload,
                "status": EventStatus.PENDING,
                "attempts": 0,
                "available_at": now,
                "lease_expires_at": None,
                "last_error": None,
                "request_id": uow.request_id,
                "created_at": now,
                "completed_at": None,
            },
        )
    return len(specs)


class HandledEffect(Entity, table=True):
    """One row per effect a handler has produced, keyed by a business key (e.g.
    `email:order_placed:<order id>`). Written in the same transaction as a database
    effect, or right after an external send and checked before it."""

    __tablename__ = "handled_effects"

    key: str = Field(max_length=255, unique=True, nullable=False)
    event_id: UUID | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

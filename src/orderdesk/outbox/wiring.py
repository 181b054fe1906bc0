"""Which handlers consume which event: the handler table, and how `emit` and the
runners reach it.

Words used throughout the outbox, in code, settings, logs and docs:
- **outbox**: the whole mechanism (rows written in the emitter's transaction, the
  relay, the runners, retries, dead letters);
- **event**: a typed fact (`orderdesk.outbox.events`), and the rows it becomes, one
  per consumer;
- **handler**: an async function that consumes one event type; its **name** is
  stored in each row, so names never change once deployed;
- **relay**: leases due rows and hands them to a **runner** (in process, or Celery);
- **periodic job**: scheduled work (`orderdesk.outbox.scheduler`).

The table is built once, at the composition root (`orderdesk.bootstrap.HANDLERS`),
and installed for the process by `bootstrap.build_container`, which every process
(API, worker, CLI) calls before it does anything else. `emit` is called by services
that hold only a unit of work, from requests, handlers, periodic jobs and CLI
commands alike; a table installed per process reaches all of them without every
`unit_of_work(...)` call having to carry it, and the outbox imports nothing from the
domains whose handlers it runs. `emit` or a runner before `install` is a bug and
raises `HandlersNotInstalled` instead of silently dropping events. A test uses its
own table for its duration (`use_handlers`, which wins over the process's table even
if the test builds a container; `tests/fakes.py` has the fixture).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from orderdesk.outbox.events import Event

if TYPE_CHECKING:
    from orderdesk.container import Container

E = TypeVar("E", bound=Event)


@dataclass(slots=True)
class EventContext:
    event_id: UUID
    topic: str
    attempt: int
    request_id: str | None
    # Set by `finish`: the handler marked its event done in its own transaction.
    finished: bool = False


# A handler opens its own units of work: no transaction (and on SQLite no write lock)
# is held while it talks to the outside world. Handlers must be idempotent: an event
# may be delivered twice, its effect must happen once.
Handler = Callable[["Container", E, EventContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Consumer:
    """One handler of one event type, under the name its rows carry."""

    name: str
    event_type: type[Event]
    run: Handler[Any]


class HandlerTable:
    """Event type → its handlers, each under a stable name.

    `HandlerTable({OrderPlaced: {"email.order_placed": send_order_mail}})`: the
    names are what rows store, so renaming one strands the rows already written."""

    def __init__(self, wiring: Mapping[type[Event], Mapping[str, Handler[Any]]]) -> None:
        self._by_type: dict[type[Event], tuple[Consumer, ...]] = {}
        self._by_name: dict[str, Consumer] = {}
        for event_type, handlers in wiring.items():
            consumers = []
            for name, run in handlers.items():
                if name in self._by_name:
                    raise ValueError(f"handler name {name!r} is taken")
                consumer = Consumer(name=name, event_type=event_type, run=run)
                self._by_name[name] = consumer
                consumers.append(consumer)
            self._by_type[event_type] = tuple(consumers)

    def consumers_of(self, event_type: type[Event]) -> Sequence[Consumer]:
        return self._by_type.get(event_type, ())

    def named(self, name: str) -> Consumer | None:
        return self._by_name.get(name)

    def event_types(self) -> Sequence[type[Event]]:
        return tuple(t for t, consumers in self._by_type.items() if consumers)

    def names(self) -> Sequence[str]:
        return tuple(self._by_name)


class HandlersNotInstalled(RuntimeError):
    pass


_process_table: HandlerTable | None = None
# Tables installed for a block by `use_handlers` (tests), innermost last: they win
# over the process's table, whatever builds a container meanwhile.
_overrides: list[HandlerTable] = []


def install(table: HandlerTable) -> None:
    """Make `table` the process's handler table (the composition root does this)."""
    global _process_table
    _process_table = table


def installed() -> HandlerTable:
    if _overrides:
        return _overrides[-1]
    if _process_table is None:
        raise HandlersNotInstalled(
            "no handler table is installed: build the process with "
            "orderdesk.bootstrap.build_container (or call outbox.wiring.install) "
            "before emitting or running events"
        )
    return _process_table


@contextmanager
def use_handlers(table: HandlerTable) -> Iterator[HandlerTable]:
    """Use `table` instead of the process's table for the block (tests)."""
    _overrides.append(table)
    try:
        yield table
    finally:
        _overrides.remove(table)

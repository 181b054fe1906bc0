"""Fakes at the ports, and the fixtures that put them in place.

- `RecordingMailer`: the `Mailer` port, keeping every message instead of sending it
  (the `mailer` fixture in `tests/conftest.py` gives the `container` one).
- `ManualClock`, `ManualMonotonic`: clocks moved by the test (no sleeping for
  leases, backoff or throttle windows).
- `handler_table`: installs a test's own `HandlerTable` (test event classes, test
  handlers) for that test only, instead of registering into a global.
- `production_handlers` (session, autouse): the process's table, as
  `bootstrap.build_container` installs it in a real process; tests build their
  containers without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest

from orderdesk.bootstrap import HANDLERS
from orderdesk.notifications.mailer import EmailMessage
from orderdesk.outbox import wiring
from orderdesk.outbox.events import Event
from orderdesk.outbox.wiring import Handler, HandlerTable

# One-time tokens are secrets.token_urlsafe(32): 43 URL-safe characters on a line.
_TOKEN_LINE = re.compile(r"^\s*([A-Za-z0-9_-]{43})\s*$", re.M)


class RecordingMailer:
    """The `Mailer` port, keeping every message it is handed in `sent`."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)

    def messages(self, kind: str | None = None, *, to: str | None = None) -> list[EmailMessage]:
        return [
            message
            for message in self.sent
            if (kind is None or message.kind == kind) and (to is None or message.to == to)
        ]

    def of_kind(self, kind: str) -> list[EmailMessage]:
        return [message for message in self.sent if message.kind == kind]

    def to(self, address: str, kind: str | None = None) -> list[EmailMessage]:
        return [
            message
            for message in self.sent
            if message.to == address and (kind is None or message.kind == kind)
        ]

    def last_token(self, kind: str) -> str:
        """The one-time token in the last `kind` message (verification, reset)."""
        messages = self.of_kind(kind)
        assert messages, f"no {kind} message was sent"
        match = _TOKEN_LINE.search(messages[-1].text)
        assert match, f"no token in the {kind} message"
        return match.group(1)


class ManualClock:
    """The clock port, moved by the test: no sleeping for leases and backoff."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class ManualMonotonic:
    """A monotonic clock in seconds that moves only when a test says so (for the
    throttles' in-process counters)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session", autouse=True)
def production_handlers() -> None:
    wiring.install(HANDLERS)


InstallHandlers = Callable[[Mapping[type[Event], Mapping[str, Handler[Any]]]], HandlerTable]


@pytest.fixture
def handler_table() -> Iterator[InstallHandlers]:
    """`handler_table({Probe: {"test.probe": run}})`: that table, and no other, for
    the rest of the test (emit and the runners see it; the production table comes
    back after the test)."""
    with ExitStack() as stack:

        def install(table: Mapping[type[Event], Mapping[str, Handler[Any]]]) -> HandlerTable:
            return stack.enter_context(wiring.use_handlers(HandlerTable(table)))

        yield install

"""Fakes at the ports: a mailer that records what it was handed, and clocks that
move only when a test says so."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from orderdesk.notifications.mailer import EmailMessage, Mailer

# One-time tokens are secrets.token_urlsafe(32): 43 URL-safe characters on a line.
_TOKEN_LINE = re.compile(r"^\s*([A-Za-z0-9_-]{43})\s*$", re.M)


class RecordingMailer:
    """The `Mailer` port, keeping every message it is handed in `sent`.

    `also`, when given, is handed each message too (the log mailer, for tests that
    still read mail from the log)."""

    def __init__(self, *, also: Mailer | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self._also = also

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)
        if self._also is not None:
            await self._also.send(message)

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

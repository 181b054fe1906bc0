"""The `Mailer` port: how a message leaves orderdesk.

The development adapter writes messages to the log (and so shows verification and
reset links in the console); the SMTP adapter arrives with background notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    kind: str


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class LogMailer:
    def __init__(self) -> None:
        self._log = structlog.get_logger("orderdesk.mail")

    async def send(self, message: EmailMessage) -> None:
        self._log.info(
            "email", to=message.to, subject=message.subject, kind=message.kind, text=message.text
        )

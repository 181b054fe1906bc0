"""The `Mailer` port and its adapters: the log mailer (development, and the default
when `ORDERDESK_SMTP_URL` is unset) and SMTP through aiosmtplib."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import structlog

DEFAULT_SENDER = "orderdesk <no-reply@orderdesk.invalid>"
_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    kind: str
    html: str | None = None
    # Derived from the effect's idempotency key, so a resend after a crash carries
    # the same Message-ID and receivers can drop the duplicate.
    message_id: str | None = None


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class LogMailer:
    def __init__(self) -> None:
        self._log = structlog.get_logger("orderdesk.mail")

    async def send(self, message: EmailMessage) -> None:
        self._log.info(
            "email",
            to=message.to,
            subject=message.subject,
            kind=message.kind,
            text=message.text,
            message_id=message.message_id,
        )


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """From `smtp://[user:pass@]host[:port]?sender=…&starttls=true` (STARTTLS on
    upgrade) or `smtps://…` (implicit TLS); `timeout=` in seconds."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None
    sender: str
    timeout: float

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("ORDERDESK_SMTP_URL must look like smtp://host:port or smtps://…")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        implicit = parts.scheme == "smtps"
        starttls = query.get("starttls")
        if starttls is not None and starttls.lower() not in _FLAGS:
            raise ValueError("starttls in ORDERDESK_SMTP_URL must be true or false")
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            # None lets aiosmtplib upgrade when the server offers STARTTLS.
            start_tls=None if starttls is None else _FLAGS[starttls.lower()],
            sender=query.get("sender", DEFAULT_SENDER),
            timeout=float(query.get("timeout", "10")),
        )


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, message: EmailMessage) -> None:
        mime = MimeMessage()
        mime["From"] = self._config.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        if message.message_id:
            mime["Message-ID"] = message.message_id
        mime["X-Orderdesk-Kind"] = message.kind
        mime.set_content(message.text)
        if message.html:
            mime.add_alternative(message.html, subtype="html")
        await aiosmtplib.send(
            mime,
            hostname=self._config.host,
            port=self._config.port,
            username=self._config.username,
            password=self._config.password,
            use_tls=self._config.use_tls,
            start_tls=self._config.start_tls,
            timeout=self._config.timeout,
        )


def mailer_from_url(url: str | None) -> Mailer:
    return SmtpMailer(SmtpConfig.from_url(url)) if url else LogMailer()

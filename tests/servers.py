"""Real loopback peers that integration and end-to-end tests both use: an SMTP
server that keeps what it receives, an HTTP receiver for outbound webhooks, and the
`orderdesk` command run as a subprocess. Integration tests import these, never
`tests/e2e` helpers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

ORDERDESK = Path(sys.executable).with_name("orderdesk")
CLI_TIMEOUT_SECONDS = 120.0
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- SMTP ------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts, parsed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(message)
        return "250 Message accepted for delivery"

    def messages(self, kind: str | None = None) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self._messages if kind is None or m["X-Orderdesk-Kind"] == kind]


@dataclass(frozen=True)
class SmtpServer:
    inbox: Inbox
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free loopback port, in a thread of this process."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(inbox=inbox, port=port)
    finally:
        controller.stop()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the message has no text part"
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the message has no HTML part"
    return str(part.get_content())


def message_id_of(message: EmailMessage) -> str:
    """The Message-ID token; a long one arrives folded onto its own line, and the
    parser keeps the folding whitespace."""
    return str(message["Message-ID"]).strip()


def order_id_of(message: EmailMessage) -> str:
    """The order id an order e-mail names in its text (its subject has the last 8)."""
    found: set[str] = set(_UUID.findall(text_of(message)))
    assert len(found) == 1, f"expected one order id in the message, found {found}"
    return found.pop()


# --- webhooks ----------------------------------------------------------------------------


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server that records requests and answers with the next
    status in `script` (200 once the script runs out)."""

    script: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append({"headers": headers, "body": body})
        status = self.script.pop(0) if self.script else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A `Receiver` listening on a free loopback port for the test."""
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    yield receiver
    server.close()
    await server.wait_closed()


# --- the command line --------------------------------------------------------------------


def cli_env(database_url: str) -> dict[str, str]:
    """The parent's environment without any ORDERDESK_* (or HOST/PORT) settings, plus
    what a production process on `database_url` runs with."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ORDERDESK_") and name not in {"HOST", "PORT"}
    }
    env.update(
        ORDERDESK_ENV="production",
        ORDERDESK_SECRET_KEY=secrets.token_urlsafe(48),
        ORDERDESK_DATABASE_URL=database_url,
        ORDERDESK_LOG_FORMAT="json",
        ORDERDESK_LOG_LEVEL="INFO",
        # A production build, with the sandbox gateway (in process, unless a test
        # points ORDERDESK_PAYMENT_GATEWAY_URL at a sandbox process): never Stripe.
        ORDERDESK_PAYMENT_SANDBOX_ALLOWED="true",
    )
    return env


def run_cli(env: dict[str, str], workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`orderdesk ARGS` as a subprocess of the venv's own executable."""
    assert ORDERDESK.exists(), f"{ORDERDESK} is missing; install the project into the venv"
    return subprocess.run(
        [str(ORDERDESK), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
        stdin=subprocess.DEVNULL,
    )


READY_TIMEOUT_SECONDS = 30.0


@contextmanager
def serving(env: dict[str, str], workdir: Path, port: int) -> Iterator[Path]:
    """`orderdesk serve` on 127.0.0.1:`port` with `env`, ready, until the block ends;
    the path of its stderr log (its stdout goes beside it)."""
    stderr_path = workdir / "serve.stderr.log"
    with (
        (workdir / "serve.stdout.log").open("wb") as stdout,
        stderr_path.open("wb") as stderr,
    ):
        process = subprocess.Popen(
            [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}", stderr_path)
        yield stderr_path
    finally:
        stop(process)


def server_env(database_url: str) -> dict[str, str]:
    """What a production `orderdesk serve` on `database_url` runs with (see
    `tests.servers.cli_env`), with the sign-up limit lifted: every test's client comes
    from one address, and a module shares a server."""
    return {**cli_env(database_url), "ORDERDESK_SIGNUP_MAX_PER_ADDRESS": "100000"}


def wait_until_ready(process: subprocess.Popen[bytes], base_url: str, stderr_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"orderdesk serve exited with {process.returncode}:\n"
                + stderr_path.read_text(encoding="utf-8")[-4000:]
            )
        try:
            response = httpx.get(f"{base_url}/health/ready", timeout=2.0)
            if response.status_code == 200:
                return
            last_error = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            last_error = repr(exc)
        time.sleep(0.1)
    pytest.fail(f"orderdesk serve was not ready within {READY_TIMEOUT_SECONDS} s: {last_error}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)

"""Real peers and real processes for the background-job tests: an SMTP server that
keeps what it receives, `orderdesk serve` and `orderdesk worker` as subprocesses that
can be killed (whole process groups) and started again, a private redis-server, an
HTTP driver that signs customers up and places orders, and a look at the outbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.conftest import ORDERDESK, free_port, run_cli, server_env
from tests.helpers import STRONG_PASSWORD, unique_email

API = "/api/v1"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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


@dataclass
class Tally:
    """Order e-mails grouped by order and by Message-ID: what "exactly once" means."""

    orders: dict[str, str]  # order id -> the customer's address
    by_order: dict[str, list[EmailMessage]] = field(default_factory=lambda: defaultdict(list))
    by_message_id: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, messages: list[EmailMessage], orders: dict[str, str]) -> Tally:
        tally = cls(orders=dict(orders))
        for message in messages:
            order_id = order_id_of(message)
            if order_id in tally.orders:
                tally.by_order[order_id].append(message)
                tally.by_message_id[message_id_of(message)] += 1
        return tally

    @property
    def raw(self) -> int:
        return sum(len(messages) for messages in self.by_order.values())

    @property
    def duplicates(self) -> int:
        """Deliveries beyond the first, per order."""
        return sum(len(messages) - 1 for messages in self.by_order.values() if messages)

    @property
    def lost(self) -> set[str]:
        return {order_id for order_id in self.orders if not self.by_order.get(order_id)}

    def message_ids_per_order(self) -> dict[str, set[str]]:
        return {
            order_id: {message_id_of(m) for m in messages}
            for order_id, messages in self.by_order.items()
        }

    def misaddressed(self) -> list[str]:
        return [
            order_id
            for order_id, messages in self.by_order.items()
            if any(str(m["To"]).strip() != self.orders[order_id] for m in messages)
        ]

    def wrong_subjects(self) -> list[str]:
        return [
            order_id
            for order_id, messages in self.by_order.items()
            if any(order_id[-8:] not in str(m["Subject"]) for m in messages)
        ]


def wait_for_mail(
    inbox: Inbox, orders: dict[str, str], *, kind: str = "order_placed", timeout: float = 90.0
) -> Tally:
    """Poll until every order has its e-mail or `timeout` runs out; the tally."""
    deadline = time.monotonic() + timeout
    while True:
        tally = Tally.of(inbox.messages(kind), orders)
        if not tally.lost or time.monotonic() > deadline:
            return tally
        time.sleep(0.2)


# --- processes -------------------------------------------------------------------------


class Process:
    """A long-running command in its own session, so the whole process group (a Celery
    worker's pool children too) can be killed at once, and started again."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self._argv = argv
        self._env = env
        self._workdir = workdir
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.starts = 0
        self.kills = 0

    @property
    def log_path(self) -> Path:
        return self._workdir / f"{self.name}.log"

    def start(self) -> None:
        assert self._popen is None, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {self.name}: start {self.starts + 1} ===\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self._popen = subprocess.Popen(
                self._argv,
                env=self._env,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def exited(self) -> bool:
        return self._popen is not None and self._popen.poll() is not None

    def kill(self) -> None:
        """SIGKILL to the whole process group: no cleanup, no acks, no goodbyes."""
        self._signal_group_and_reap(signal.SIGKILL, grace=0)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM to the group, a grace period, then SIGKILL whatever is left."""
        self._signal_group_and_reap(signal.SIGTERM, grace=10)

    def _signal_group_and_reap(self, sig: signal.Signals, *, grace: float) -> None:
        if self._popen is None:
            return
        pgid = self._popen.pid  # start_new_session: the child leads its own group
        _signal_group(pgid, sig)
        if not self._group_gone(pgid, timeout=grace):
            _signal_group(pgid, signal.SIGKILL)
            self._group_gone(pgid, timeout=15)
        self._popen.wait(timeout=15)
        self._popen = None

    def _group_gone(self, pgid: int, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._popen is not None:
                self._popen.poll()  # reap our child: a zombie still counts in its group
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def wait_for_log(self, needle: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_since_start():
                return
            if self.exited:
                pytest.fail(f"{self.name} exited:\n{self.log_tail()}")
            time.sleep(0.1)
        pytest.fail(f"{self.name} did not log {needle!r} within {timeout} s:\n{self.log_tail()}")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def wait_for_port(port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def private_redis(workdir: Path, port: int) -> Process:
    """A throwaway redis-server of our own (no persistence), to stop and start."""
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    return Process(f"redis-{port}", argv, env=dict(os.environ), workdir=workdir)


@dataclass
class Deployment:
    """`orderdesk serve` (and, with a broker, `orderdesk worker`) on one database."""

    env: dict[str, str]
    workdir: Path
    port: int
    serve: Process
    worker: Process | None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_serve(self) -> None:
        self.serve.start()

    def wait_until_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.serve.exited:
                pytest.fail(f"serve exited:\n{self.serve.log_tail()}")
            try:
                response = httpx.get(f"{self.base_url}/health/ready", timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
        pytest.fail(f"serve was not ready within {timeout} s: {last}\n{self.serve.log_tail()}")

    def start_worker(self, *, wait: bool = True) -> None:
        assert self.worker is not None
        self.worker.start()
        if wait:
            self.wait_for_worker()

    def wait_for_worker(self, timeout: float = 60.0) -> None:
        assert self.worker is not None
        self.worker.wait_for_log(" ready.", timeout=timeout)

    def stop(self) -> None:
        for process in (self.worker, self.serve):
            if process is not None:
                process.stop()

    def logs(self) -> str:
        parts = [self.serve.log_tail()]
        if self.worker is not None:
            parts.append(self.worker.log_tail())
        return "\n".join(parts)


def jobs_env(database_url: str, **settings: str | float | int | None) -> dict[str, str]:
    """The e2e server environment plus background-job settings (`None` leaves one
    unset), e.g. `broker_url=`, `smtp_url=`, `job_lease_seconds=`."""
    env = server_env(database_url)
    env["ORDERDESK_RELAY_INTERVAL_SECONDS"] = "0.2"
    for name, value in settings.items():
        if value is not None:
            env[f"ORDERDESK_{name.upper()}"] = str(value)
    return env


@contextmanager
def deployment(
    env: dict[str, str], workdir: Path, *, with_worker: bool, concurrency: int = 2
) -> Iterator[Deployment]:
    """Start serve (and a worker), wait for them, and always stop them afterwards."""
    port = free_port()
    serve = Process(
        "serve",
        [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        workdir=workdir,
    )
    worker = (
        Process(
            "worker",
            [str(ORDERDESK), "worker", "--concurrency", str(concurrency)],
            env=env,
            workdir=workdir,
        )
        if with_worker
        else None
    )
    running = Deployment(env=env, workdir=workdir, port=port, serve=serve, worker=worker)
    try:
        running.start_serve()
        if worker is not None:
            running.start_worker(wait=False)
        running.wait_until_serving()
        if worker is not None:
            running.wait_for_worker()
        yield running
    finally:
        running.stop()


class Killer(threading.Thread):
    """Kills a process group at random moments and starts it again, `kills` times.

    A kill comes `gaps` (min, max) seconds after the process was (re)started. With
    `ready_gaps`, every `ready_every`-th kill instead waits until `was_ready()` (the
    process is up and working) and comes `ready_gaps` seconds after that, so kills hit
    both a process that is starting and one that is busy."""

    def __init__(
        self,
        *,
        kill: Callable[[], None],
        restart: Callable[[], None],
        kills: int,
        gaps: tuple[float, float],
        seed: int,
        deadline: float,
        was_ready: Callable[[], bool] = lambda: True,
        ready_gaps: tuple[float, float] | None = None,
        ready_every: int = 2,
        ready_timeout: float = 30.0,
    ) -> None:
        super().__init__(name="killer", daemon=True)
        self._kill = kill
        self._restart = restart
        self._kills = kills
        self._gaps = gaps
        self._ready_gaps = ready_gaps
        self._ready_every = ready_every
        self._ready_timeout = ready_timeout
        self._random = random.Random(seed)
        self._deadline = deadline
        self._was_ready = was_ready
        self._stop_requested = threading.Event()
        self.done = 0
        self.after_ready = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.done < self._kills and time.monotonic() < self._deadline:
                gaps = self._gaps
                if self._ready_gaps is not None and self.done % self._ready_every == 1:
                    if not self._wait_until_ready():
                        return
                    gaps = self._ready_gaps
                if self._stop_requested.wait(self._random.uniform(*gaps)):
                    return
                ready = self._was_ready()
                self._kill()
                self.done += 1
                self.after_ready += ready
                self._restart()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _wait_until_ready(self) -> bool:
        give_up = time.monotonic() + self._ready_timeout
        while not self._was_ready():
            if time.monotonic() > give_up or self._stop_requested.wait(0.05):
                return False
        return True

    def stop(self) -> None:
        """Kill no more (a kill already under way finishes)."""
        self._stop_requested.set()
        self.join(timeout=120)


# --- HTTP ------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(http: httpx.Client, address: str, password: str = STRONG_PASSWORD) -> str:
    response = http.post(f"{API}/auth/token", data={"username": address, "password": password})
    assert response.status_code == 200, response.text
    access: str = response.json()["access_token"]
    return access


def create_admin(env: dict[str, str], workdir: Path) -> str:
    """An admin made with `orderdesk create-admin`; their e-mail address."""
    address = unique_email("jobs-admin")
    result = run_cli(
        env, workdir, "create-admin", "--email", address, "--password", STRONG_PASSWORD
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return address


def create_product(http: httpx.Client, admin_token: str, *, stock: int = 1_000_000) -> str:
    response = http.post(
        f"{API}/products",
        json={
            "sku": f"JOBS-{uuid.uuid4().hex[:12]}",
            "name": "Background jobs mug",
            "price": {"amount": 1299, "currency": "EUR"},
            "stock": stock,
        },
        headers=bearer(admin_token),
    )
    assert response.status_code == 201, response.text
    product_id: str = response.json()["id"]
    return product_id


@dataclass(frozen=True)
class Customer:
    email: str
    token: str


def sign_up_customers(http: httpx.Client, count: int) -> list[Customer]:
    customers = []
    for _ in range(count):
        address = unique_email("jobs")
        response = http.post(
            f"{API}/auth/register",
            json={"email": address, "password": STRONG_PASSWORD, "full_name": "Jobs Customer"},
        )
        assert response.status_code == 201, response.text
        customers.append(Customer(email=address, token=sign_in(http, address)))
    return customers


@dataclass
class Placed:
    orders: dict[str, str]  # order id -> the customer's address
    refused: list[str]  # "status body" of every answer that was not a 201
    seconds: float = 0.0


def place_orders(
    http: httpx.Client,
    customers: list[Customer],
    product_id: str,
    count: int,
    *,
    pause: float = 0.0,
    retry_for: float = 0.0,
    parallel: int = 1,
) -> Placed:
    """Place `count` orders round-robin over the customers, `parallel` at a time.

    With `retry_for`, a request that fails in transport (the server was killed) or
    meets its own key still in flight is sent again with the same Idempotency-Key for
    up to that many seconds, so each order is placed exactly once."""
    started = time.monotonic()
    placed = Placed(orders={}, refused=[])
    lock = threading.Lock()

    def place(i: int) -> None:
        customer = customers[i % len(customers)]
        headers = {**bearer(customer.token), "Idempotency-Key": f"jobs-{uuid.uuid4().hex}"}
        body = {"lines": [{"product_id": product_id, "quantity": 1}]}
        give_up = time.monotonic() + retry_for
        while True:
            try:
                response = http.post(f"{API}/orders", json=body, headers=headers)
            except httpx.TransportError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.2)
                continue
            if response.status_code == 409 and time.monotonic() < give_up:
                time.sleep(0.2)
                continue
            break
        with lock:
            if response.status_code == 201:
                placed.orders[response.json()["id"]] = customer.email
            else:
                placed.refused.append(f"{response.status_code} {response.text}")
        if pause:
            time.sleep(pause)

    def place_every(lane: int) -> None:
        for i in range(lane, count, parallel):
            place(i)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for lane in pool.map(place_every, range(parallel)):
            assert lane is None
    placed.seconds = time.monotonic() - started
    return placed


@dataclass
class Shop:
    """An admin's product and some customers, made over HTTP."""

    product_id: str
    customers: list[Customer]


def open_shop(base_url: str, admin_email: str, *, customers: int) -> Shop:
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        product_id = create_product(http, sign_in(http, admin_email))
        return Shop(product_id=product_id, customers=sign_up_customers(http, customers))


# --- the outbox, read straight from the database -----------------------------------------


def outbox_counts(database_url: str) -> dict[str, int]:
    """Outbox events by status."""

    async def count() -> dict[str, int]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text("SELECT status, count(*) FROM outbox_events GROUP BY status")
                )
                return {str(status): int(n) for status, n in rows.all()}
        finally:
            await engine.dispose()

    return asyncio.run(count())


def unfinished_events(database_url: str, limit: int = 20) -> list[dict[str, object]]:
    """Events not done, for reports: what is stuck, and why."""

    async def fetch() -> list[dict[str, object]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text(
                        "SELECT id, topic, handler, status, attempts, last_error"
                        " FROM outbox_events WHERE status <> 'done' LIMIT :limit"
                    ),
                    {"limit": limit},
                )
                return [dict(row._mapping) for row in rows]
        finally:
            await engine.dispose()

    return asyncio.run(fetch())


def wait_for_outbox_to_settle(database_url: str, *, timeout: float = 60.0) -> dict[str, int]:
    """Poll until no event is pending or running (or `timeout`); the counts."""
    deadline = time.monotonic() + timeout
    while True:
        counts = outbox_counts(database_url)
        busy = counts.get("pending", 0) + counts.get("running", 0)
        if not busy or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)

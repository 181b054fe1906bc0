"""orderdesk's outbox throughput benchmark (issue 4), with a Celery no-op baseline in
the same run.

    .venv/bin/python bench/outbox.py [--events 1200] [--lag-seconds 15] [--load 0.5]
                                     [--rate EVENTS_PER_S] [--workers 1,2] [--skip-baseline]
                                     [--broker-url redis://127.0.0.1:6379/7] [--mailer smtp]
                                     [--what-if relay_interval_seconds=0.05] [--keep-workdir]

What it does (bench/README.md, "Outbox throughput", says why and what the numbers mean):

1. builds a backlog once, the way users make one: a fresh PostgreSQL database
   (`orderdesk migrate upgrade`, `create-admin`, `import-products`), customers who
   register and sign in over HTTP, then `--events`/2 orders placed through
   `POST /api/v1/orders` while the relay is parked. Each order commits its
   `order.placed` outbox rows (one per handler: the order e-mail and the webhook
   fan-out) in its own transaction. That database is the template of every run;
2. for each runner configuration, on a fresh copy of it:
   (a) throughput: starts the consumer (in process: `orderdesk serve`; Celery:
       `orderdesk worker --concurrency N`, whose relay thread feeds its pool) and
       waits until every event is done: events/s from the first to the last
       `completed_at`, and CPU per event of the consumer processes, the database
       backends and the broker;
   (b) lag: an open-loop producer places orders at a fixed rate (`--load` x the
       capacity just measured, or `--rate`) for `--lag-seconds` against the running
       deployment; lag per event = `completed_at` - `created_at`;
3. the baseline, per worker count: the same numbers for a no-op Celery task
   (bench/outbox_noop.py) published straight from this process, same broker and
   delivery settings, same N and the same rate;
4. prints a table and writes everything to bench/results/outbox-<timestamp>.json.

The order e-mails go to an SMTP sink (aiosmtpd) in this process, which also counts
duplicate deliveries by Message-ID; no webhook subscriptions exist, so the fan-out
handler finds none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import resource
import secrets
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from common import (
    BENCH_DIR,
    ORDER_PATH,
    ORDERDESK,
    PARKED_RELAY_SECONDS,
    PYTHON,
    READY_TIMEOUT_SECONDS,
    STOCK,
    Process,
    add_database_args,
    begin,
    cli,
    cpu_delta,
    cpu_seconds,
    database_url,
    db_dsn,
    drop_database,
    expect,
    free_port,
    machine_busy_seconds,
    process_tree,
    recreate_database,
    server_env,
    sign_in,
    wait_http_ready,
    write_catalog_csv,
    write_results,
)

CELERY = PYTHON.with_name("celery")
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/7"
TOPIC = "order.placed"
PRODUCTS = 200  # the catalog orders draw their three lines from (no hot rows)
CUSTOMERS = 4
LINES_PER_ORDER = 3
BACKLOG_CONCURRENCY = 16  # concurrent POSTs while the backlog is built
MAX_IN_FLIGHT = 64  # open-loop producer: a request due while this many are open is skipped
POLL_SECONDS = 0.2
SETTLE_TIMEOUT_SECONDS = 90.0  # after the lag producer stops, for the last events
BROKER_PROCESS_NAMES = ("redis-server", "beam.smp")


# --------------------------------------------------------------------------- results


@dataclass
class Cpu:
    """CPU seconds spent during a window, by whom."""

    seconds: float = 0.0
    app: float = 0.0  # the consumer's processes (and the API's in the lag phase)
    db: float = 0.0  # PostgreSQL backends connected to the run's database
    broker: float = 0.0  # redis-server / RabbitMQ
    bench: float = 0.0  # this process: producer, SMTP sink, polling
    other: float = 0.0  # everything else on the machine: noise
    load1: float = 0.0

    @property
    def other_cores(self) -> float:
        return self.other / self.seconds if self.seconds else 0.0


@dataclass
class Throughput:
    """(a): a backlog of `events` worked off by a consumer started on it."""

    events: int = 0
    done: int = 0
    failed: int = 0
    unfinished: int = 0
    re_leased: int = 0  # events leased more than once (attempts > 1)
    max_attempts: int = 0
    startup_seconds: float = 0.0  # consumer start to ready
    first_to_last_seconds: float = 0.0  # first to last completion
    start_to_last_seconds: float = 0.0  # consumer start to last completion
    cpu_events: int = 0  # events completed inside the CPU window (ready → all done)
    cpu: Cpu = field(default_factory=Cpu)
    mails: int = 0
    duplicate_mails: int = 0
    # Celery: run_event tasks the worker finished (from its log), and how many of them
    # found their event already done (a second copy of a re-leased event).
    tasks: int = 0
    tasks_without_work: int = 0
    note: str = ""

    @property
    def events_per_second(self) -> float:
        if self.first_to_last_seconds <= 0 or self.done < 2:
            return 0.0
        return (self.done - 1) / self.first_to_last_seconds

    def per_event_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.cpu_events if self.cpu_events else 0.0


@dataclass
class Lag:
    """(b): events produced at a fixed rate into a running deployment."""

    rate: float = 0.0  # offered, events/s
    seconds: float = 0.0
    offered: int = 0  # orders (or tasks) due in the window
    sent: int = 0
    refused: int = 0  # HTTP answers other than 201
    skipped: int = 0  # due while MAX_IN_FLIGHT requests were open
    events: int = 0
    done: int = 0
    unfinished: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    # orderdesk only: created_at (the emit, inside the order's transaction) to the
    # HTTP answer (after the commit), and the lag counted from the answer instead.
    emit_to_answer_p50_ms: float = 0.0
    from_answer_p50_ms: float = 0.0
    from_answer_p99_ms: float = 0.0
    cpu: Cpu = field(default_factory=Cpu)
    duplicate_mails: int = 0
    note: str = ""

    @property
    def achieved_rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class RunResult:
    name: str
    kind: str  # inprocess | celery | baseline
    workers: int
    settings: dict[str, str] = field(default_factory=dict)
    throughput: Throughput = field(default_factory=Throughput)
    lag: Lag = field(default_factory=Lag)

    def summary(self) -> dict[str, Any]:
        t, lag = self.throughput, self.lag
        return {
            **asdict(self),
            "events_per_second": round(t.events_per_second, 1),
            "app_cpu_ms_per_event": round(t.per_event_ms(t.cpu.app), 3),
            "db_cpu_ms_per_event": round(t.per_event_ms(t.cpu.db), 3),
            "broker_cpu_ms_per_event": round(t.per_event_ms(t.cpu.broker), 3),
            "throughput_other_cores": round(t.cpu.other_cores, 2),
            "lag_achieved_rate": round(lag.achieved_rate, 1),
            "lag_other_cores": round(lag.cpu.other_cores, 2),
        }


# ----------------------------------------------------------------------- processes


def wait_log(process: Process, needle: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        process.check_alive()
        if needle in process.log_path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise SystemExit(f"{process.name} did not log {needle!r}:\n{process.log_tail()}")


# ------------------------------------------------------------------ CPU accounting


def _named(names: tuple[str, ...]) -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() in names:
                pids.append(int(comm.parent.name))
    return pids


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU of the app's process trees, the database backends, the broker, this
    process and the rest of the machine, between `start()` and `stop()`."""

    def __init__(
        self, app_roots: Callable[[], list[int]], db_pids: Callable[[], list[int]]
    ) -> None:
        self._app_roots = app_roots
        self._db_pids = db_pids
        self._before: dict[str, Any] = {}

    def start(self) -> None:
        self._before = {
            "t": time.monotonic(),
            "load1": os.getloadavg()[0],
            "app": cpu_seconds(process_tree(self._app_roots())),
            "db": cpu_seconds(self._db_pids()),
            "broker": cpu_seconds(_named(BROKER_PROCESS_NAMES)),
            "bench": _self_cpu(),
            "busy": machine_busy_seconds(),
        }

    def stop(self) -> Cpu:
        b = self._before
        busy = machine_busy_seconds() - b["busy"]
        cpu = Cpu(
            seconds=time.monotonic() - b["t"],
            app=cpu_delta(b["app"], cpu_seconds(process_tree(self._app_roots()))),
            db=cpu_delta(b["db"], cpu_seconds(self._db_pids())),
            broker=cpu_delta(b["broker"], cpu_seconds(_named(BROKER_PROCESS_NAMES))),
            bench=_self_cpu() - b["bench"],
            load1=b["load1"],
        )
        cpu.other = max(busy - cpu.app - cpu.db - cpu.broker - cpu.bench, 0.0)
        return cpu


# --------------------------------------------------------------------- SMTP sink


class Sink:
    """An SMTP server in a thread of this process that counts what it accepts, by
    Message-ID (a second copy of one is a duplicate delivery)."""

    _MESSAGE_ID = re.compile(rb"Message-ID:\s*(<[^>]+>)", re.IGNORECASE)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_id: Counter[bytes] = Counter()
        self.port = free_port()
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        found = self._MESSAGE_ID.search(raw[:4000])
        with self._lock:
            self.by_id[found.group(1) if found else b"?"] += 1
        return "250 Message accepted for delivery"

    def reset(self) -> None:
        """Every run works on a copy of the same orders, so the same Message-IDs:
        duplicates are counted per run."""
        with self._lock:
            self.by_id.clear()

    def counts(self) -> tuple[int, int]:
        """Messages, and duplicates (copies beyond the first of a Message-ID)."""
        with self._lock:
            total = sum(self.by_id.values())
            return total, total - len(self.by_id)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=false"

    def __enter__(self) -> Sink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


# -------------------------------------------------------------------- database


class Db:
    """One connection to a run's database, on its own event loop, for polling; its
    backend is left out of the database CPU."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.name = name
        self._admin_url = admin_url
        self._loop = asyncio.new_event_loop()
        self._conn = self._run(asyncpg.connect(db_dsn(admin_url, name)))
        self._own_pid = self._conn.get_server_pid()

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._conn.close())
        self._loop.close()

    def fetch(self, query: str, *args: Any) -> list[Any]:
        return list(self._run(self._conn.fetch(query, *args)))

    def fetchrow(self, query: str, *args: Any) -> Any:
        return self._run(self._conn.fetchrow(query, *args))

    def backend_pids(self) -> list[int]:
        rows = self.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1"
            " AND backend_type = 'client backend' AND pid <> $2",
            self.name,
            self._own_pid,
        )
        return [int(row["pid"]) for row in rows]

    def progress(self) -> tuple[int, int, int]:
        """order.placed events: all, done, failed."""
        row = self.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'done') AS done,"
            " count(*) FILTER (WHERE status = 'failed') AS failed"
            " FROM outbox_events WHERE topic = $1",
            TOPIC,
        )
        return int(row["n"]), int(row["done"]), int(row["failed"])

    def open_events(self) -> int:
        row = self.fetchrow(
            "SELECT count(*) AS n FROM outbox_events WHERE status IN ('pending', 'running')"
        )
        return int(row["n"])


def _epoch(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


# ---------------------------------------------------------------------- the shop


@dataclass
class Shop:
    """Customers (with tokens) and the products their orders draw from."""

    customers: list[str]
    product_ids: list[str]
    events_per_order: int = 0
    orders: int = 0
    events: int = 0
    build_seconds: float = 0.0
    orders_per_second: float = 0.0


def seed(base_url: str) -> Shop:
    """Customers who register and sign in, and the imported catalog's ids."""
    with httpx.Client(base_url=base_url + "/api/v1", timeout=30.0) as client:
        tokens = []
        for n in range(CUSTOMERS):
            email, password = f"outbox-bench-{n}@example.com", secrets.token_urlsafe(24)
            registered = client.post(
                "/auth/register",
                json={"email": email, "password": password, "full_name": f"Bench Customer {n}"},
            )
            expect(registered, 201)
            tokens.append(sign_in(client, email, password))
        ids: list[str] = []
        cursor: str | None = None
        for _ in range(100):  # bounded: PRODUCTS / 200 pages
            params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
            page = client.get("/products", params=params)
            expect(page, 200)
            ids.extend(item["id"] for item in page.json()["items"])
            cursor = page.json()["next_cursor"]
            if not cursor:
                break
    if len(ids) < LINES_PER_ORDER:
        raise SystemExit(f"expected {PRODUCTS} products, found {len(ids)}")
    return Shop(customers=tokens, product_ids=ids)


def write_catalog(path: Path) -> None:
    write_catalog_csv(
        path,
        (
            (
                f"OUTBOX-{n:05d}",
                f"Outbox bench product {n}",
                "Stock that a benchmark cannot exhaust.",
                500 + 37 * n,
                "EUR",
                STOCK,
                "true",
            )
            for n in range(PRODUCTS)
        ),
    )


@dataclass
class Placed:
    order_id: str
    sent: float  # Unix seconds
    answered: float


class Orders:
    """Places orders over HTTP: three distinct products, a fresh Idempotency-Key."""

    def __init__(self, base_url: str, shop: Shop, seed_value: int) -> None:
        self._base_url = base_url
        self._shop = shop
        self._random = random.Random(seed_value)  # noqa: S311 - not security
        self.placed: list[Placed] = []
        self.refused: list[str] = []

    def _body(self) -> dict[str, Any]:
        ids = self._random.sample(self._shop.product_ids, LINES_PER_ORDER)
        return {"lines": [{"product_id": pid, "quantity": 1} for pid in ids]}

    async def _place(self, client: httpx.AsyncClient, n: int) -> None:
        token = self._shop.customers[n % len(self._shop.customers)]
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(12)}
        body = self._body()
        sent = time.time()
        try:
            response = await client.post(ORDER_PATH, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.refused.append(repr(exc)[:200])
            return
        answered = time.time()
        if response.status_code == 201:
            self.placed.append(Placed(response.json()["id"], sent, answered))
        else:
            self.refused.append(f"{response.status_code} {response.text[:200]}")

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=32)
        return httpx.AsyncClient(base_url=self._base_url, timeout=60.0, limits=limits)

    async def closed_loop(self, count: int, concurrency: int) -> None:
        """`count` orders, `concurrency` at a time, each lane as fast as it can."""
        async with self._client() as client:

            async def lane(first: int) -> None:
                for n in range(first, count, concurrency):
                    await self._place(client, n)

            await asyncio.gather(*(lane(i) for i in range(concurrency)))

    async def open_loop(self, rate: float, seconds: float) -> tuple[int, int]:
        """Order n is due at start + n/rate, whatever happened to the ones before;
        one due while MAX_IN_FLIGHT are open is skipped. (offered, skipped)."""
        offered = max(1, int(rate * seconds))
        skipped = 0
        running: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        async with self._client() as client:
            start = loop.time()
            for n in range(offered):
                await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
                if len(running) >= MAX_IN_FLIGHT:
                    skipped += 1
                    continue
                task = asyncio.create_task(self._place(client, n))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.wait_for(asyncio.gather(*running), timeout=120)
        return offered, skipped


# ------------------------------------------------------------------- the bench


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    sink: Sink | None
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def template(self) -> str:
        return f"{self.args.database}_template"

    @property
    def run_db(self) -> str:
        return f"{self.args.database}_run"

    def database_url(self, name: str) -> str:
        return database_url(self.args.admin_url, name)

    def env(self, name: str, **settings: str) -> dict[str, str]:
        env = server_env(
            self.database_url(name), self.secret_key, self.sink.url if self.sink else None
        )
        env.update({f"ORDERDESK_{key.upper()}": value for key, value in settings.items()})
        return env

    def serve(self, name: str, env: dict[str, str]) -> tuple[Process, str]:
        port = free_port()
        argv = [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)]
        return Process(name, argv, env, self.workdir), f"http://127.0.0.1:{port}"

    def mails(self) -> tuple[int, int]:
        return self.sink.counts() if self.sink else (0, 0)

    # ---------------------------------------------------------------- backlog

    def build_template(self) -> Shop:
        """The database every run starts from: seeded, with `--events` order.placed
        events pending, placed through the API while the relay was parked."""
        recreate_database(self.args.admin_url, self.template)
        env = self.env(self.template)
        cli(env, self.workdir, "migrate", "upgrade")
        admin_password = secrets.token_urlsafe(24)
        cli(env, self.workdir, "create-admin", "--email", "outbox-admin@example.com",
            "--password", admin_password)  # fmt: skip
        catalog = self.workdir / "catalog.csv"
        write_catalog(catalog)
        cli(env, self.workdir, "import-products", str(catalog))
        # Seeding with the relay running works off the sign-ups' verification mails,
        # so the backlog holds order.placed events only.
        server, base_url = self.serve("seed", env)
        try:
            wait_http_ready(server, base_url)
            shop = seed(base_url)
            db = Db(self.args.admin_url, self.template)
            try:
                deadline = time.monotonic() + 60
                while db.open_events() and time.monotonic() < deadline:
                    time.sleep(POLL_SECONDS)
            finally:
                db.close()
        finally:
            server.stop()
        parked = self.env(self.template, relay_interval_seconds=str(PARKED_RELAY_SECONDS))
        server, base_url = self.serve("backlog", parked)
        try:
            wait_http_ready(server, base_url)
            orders = Orders(base_url, shop, seed_value=1)
            asyncio.run(orders.closed_loop(1, 1))
            db = Db(self.args.admin_url, self.template)
            try:
                shop.events_per_order = db.progress()[0]
                if shop.events_per_order < 1:
                    raise SystemExit("an order wrote no order.placed outbox event")
                count = max(1, math.ceil(self.args.events / shop.events_per_order)) - 1
                started = time.monotonic()
                asyncio.run(orders.closed_loop(count, BACKLOG_CONCURRENCY))
                shop.build_seconds = time.monotonic() - started
                if orders.refused:
                    raise SystemExit(f"orders refused while building: {orders.refused[:3]}")
                total, done, failed = db.progress()
                if done or failed:
                    raise SystemExit(f"the parked relay ran events: {done} done, {failed} failed")
            finally:
                db.close()
        finally:
            server.stop()
        shop.orders, shop.events = len(orders.placed), total
        shop.orders_per_second = count / shop.build_seconds if shop.build_seconds else 0.0
        print(
            f"backlog: {shop.orders} orders through the API in {shop.build_seconds:.1f} s "
            f"({shop.orders_per_second:.0f} orders/s), {shop.events_per_order} order.placed "
            f"events per order, {shop.events} events pending",
            flush=True,
        )
        return shop

    # ------------------------------------------------------------ orderdesk runs

    def run_orderdesk(self, kind: str, workers: int, shop: Shop, **settings: str) -> RunResult:
        name = "in-process" if kind == "inprocess" else f"celery x{workers}"
        if settings:
            name += " (" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"
        result = RunResult(name, kind, workers, settings=dict(settings))
        recreate_database(self.args.admin_url, self.run_db, template=self.template)
        if kind == "celery":
            settings = {"broker_url": self.args.broker_url, **settings}
            flush_broker(self.args.broker_url)
        env = self.env(self.run_db, **settings)
        if self.sink:
            self.sink.reset()
        db = Db(self.args.admin_url, self.run_db)
        processes: list[Process] = []
        try:
            # (a) the consumer starts on the backlog.
            if kind == "inprocess":
                consumer, base_url = self.serve(f"serve-{_slug(name)}", env)
                processes.append(consumer)
                wait_http_ready(consumer, base_url)
            else:
                argv = [str(ORDERDESK), "worker", "--concurrency", str(workers)]
                consumer = Process(f"worker-{_slug(name)}", argv, env, self.workdir)
                processes.append(consumer)
                wait_log(consumer, " ready.")
            meter = Meter(lambda: [p.pid for p in processes], db.backend_pids)
            result.throughput = self._drain(db, consumer, meter, shop.events)
            if kind == "celery":
                t = result.throughput
                t.tasks, t.tasks_without_work = _celery_tasks(consumer.log_path)
            if kind == "celery":
                # (b) needs the API: `orderdesk serve` with the broker (its relay runs too).
                api, base_url = self.serve(f"serve-{_slug(name)}", env)
                processes.append(api)
                wait_http_ready(api, base_url)
            rate = self.args.rate or self.args.load * result.throughput.events_per_second
            result.lag = self._lag_orderdesk(db, base_url, shop, meter, rate)
        finally:
            for process in reversed(processes):
                process.stop()
            db.close()
        print(_row(result), flush=True)
        return result

    def _drain(self, db: Db, consumer: Process, meter: Meter, events: int) -> Throughput:
        t = Throughput(events=events)
        mails_before = self.mails()
        meter.start()
        t.startup_seconds = time.time() - consumer.started_at
        _, done_at_ready, failed_at_ready = db.progress()
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            consumer.check_alive()
            _, done, failed = db.progress()
            if done + failed >= events:
                break
            time.sleep(POLL_SECONDS)
        t.cpu = meter.stop()
        row = db.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'done') AS done,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " count(*) FILTER (WHERE attempts > 1) AS re_leased,"
            " max(attempts) AS max_attempts,"
            " min(completed_at) AS first, max(completed_at) AS last"
            " FROM outbox_events WHERE topic = $1",
            TOPIC,
        )
        t.done, t.failed = int(row["done"]), int(row["failed"])
        t.unfinished = events - t.done - t.failed
        t.re_leased, t.max_attempts = int(row["re_leased"]), int(row["max_attempts"] or 0)
        t.cpu_events = t.done + t.failed - done_at_ready - failed_at_ready
        if row["first"] is not None:
            t.first_to_last_seconds = _epoch(row["last"]) - _epoch(row["first"])
            t.start_to_last_seconds = _epoch(row["last"]) - consumer.started_at
        mails_after = self.mails()
        t.mails = mails_after[0] - mails_before[0]
        t.duplicate_mails = mails_after[1] - mails_before[1]
        if t.unfinished:
            t.note = f"{t.unfinished} events not done after {self.args.timeout:.0f} s"
        return t

    def _lag_orderdesk(self, db: Db, base_url: str, shop: Shop, meter: Meter, rate: float) -> Lag:
        lag = Lag(rate=rate, seconds=self.args.lag_seconds)
        if rate <= 0:
            lag.note = "no rate: the throughput run completed nothing"
            return lag
        orders = Orders(base_url, shop, seed_value=2)
        order_rate = rate / shop.events_per_order
        _, duplicates_before = self.mails()
        meter.start()
        started = time.monotonic()
        lag.offered, lag.skipped = asyncio.run(orders.open_loop(order_rate, lag.seconds))
        lag.seconds = time.monotonic() - started
        lag.cpu = meter.stop()
        lag.sent, lag.refused = len(orders.placed), len(orders.refused)
        ids = [p.order_id for p in orders.placed]
        query = (
            "SELECT payload->>'order_id' AS order_id, status, created_at, completed_at"
            " FROM outbox_events WHERE topic = $1 AND payload->>'order_id' = ANY($2::text[])"
        )
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while True:
            rows = db.fetch(query, TOPIC, ids)
            settled = all(row["status"] in ("done", "failed") for row in rows)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        answered = {p.order_id: p.answered for p in orders.placed}
        lags, from_answer, emit_to_answer = [], [], []
        for row in rows:
            created = _epoch(row["created_at"])
            emit_to_answer.append(answered[row["order_id"]] - created)
            if row["status"] == "done" and row["completed_at"] is not None:
                completed = _epoch(row["completed_at"])
                lags.append(completed - created)
                from_answer.append(completed - answered[row["order_id"]])
        lag.events, lag.done = len(rows), len(lags)
        lag.unfinished = lag.events - lag.done
        _fill_percentiles(lag, lags)
        lag.emit_to_answer_p50_ms = 1000 * percentile(emit_to_answer, 50)
        lag.from_answer_p50_ms = 1000 * percentile(from_answer, 50)
        lag.from_answer_p99_ms = 1000 * percentile(from_answer, 99)
        lag.duplicate_mails = self.mails()[1] - duplicates_before
        notes = []
        if lag.unfinished:
            notes.append(f"{lag.unfinished} events not done {SETTLE_TIMEOUT_SECONDS:.0f} s after")
        if lag.skipped or lag.refused:
            notes.append(
                f"{lag.skipped} orders skipped, {lag.refused} refused: {orders.refused[:2]}"
            )
        lag.note = "; ".join(notes)
        return lag

    # --------------------------------------------------------------- baseline

    def run_baseline(self, workers: int, events: int, rate: float) -> RunResult:
        sys.path.insert(0, str(BENCH_DIR))
        import outbox_noop  # bench/ is not a package: found through sys.path

        result = RunResult(f"baseline x{workers}", "baseline", workers)
        flush_broker(self.args.broker_url)
        app = outbox_noop.make_app(self.args.broker_url)
        records = _records_client(self.args.broker_url)
        records.delete(outbox_noop.RECORD_KEY)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BENCH_")},
            "BENCH_BROKER_URL": self.args.broker_url,
            "BENCH_RECORD_URL": _record_url(self.args.broker_url),
            "PYTHONPATH": str(BENCH_DIR),
        }
        # (a) a backlog of `events` tasks, then a worker starts on it.
        for _ in range(events):
            app.send_task(outbox_noop.NOOP, args=(time.time(),))
        argv = [str(CELERY), "-A", "outbox_noop", "worker", "--loglevel=INFO"]
        argv += ["--concurrency", str(workers), "--pool", "prefork"]  # as `orderdesk worker`
        worker = Process(f"baseline-x{workers}", argv, env, self.workdir)
        try:
            wait_log(worker, " ready.")
            meter = Meter(lambda: [worker.pid], lambda: [])
            t = Throughput(events=events)
            meter.start()
            t.startup_seconds = time.time() - worker.started_at
            done_at_ready = records.llen(outbox_noop.RECORD_KEY)
            deadline = time.monotonic() + self.args.timeout
            while records.llen(outbox_noop.RECORD_KEY) < events:
                worker.check_alive()
                if time.monotonic() > deadline:
                    break
                time.sleep(POLL_SECONDS)
            t.cpu = meter.stop()
            done = _read_records(records, outbox_noop.RECORD_KEY)
            t.done = len(done)
            t.unfinished = events - t.done
            t.cpu_events = t.done - done_at_ready
            if done:
                finished = sorted(d for _, d in done)
                t.first_to_last_seconds = finished[-1] - finished[0]
                t.start_to_last_seconds = finished[-1] - worker.started_at
            result.throughput = t
            # (b) the same rate as orderdesk's run with this many workers.
            records.delete(outbox_noop.RECORD_KEY)
            result.lag = self._lag_baseline(app, records, outbox_noop, meter, rate)
        finally:
            worker.stop()
            records.delete(outbox_noop.RECORD_KEY)
        print(_row(result), flush=True)
        return result

    def _lag_baseline(self, app: Any, records: Any, noop: Any, meter: Meter, rate: float) -> Lag:
        lag = Lag(rate=rate, seconds=self.args.lag_seconds)
        if rate <= 0:
            lag.note = "no rate"
            return lag
        lag.offered = max(1, int(rate * lag.seconds))
        meter.start()
        started = time.monotonic()
        for n in range(lag.offered):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            app.send_task(noop.NOOP, args=(time.time(),))
        lag.seconds = time.monotonic() - started
        lag.cpu = meter.stop()
        lag.sent = lag.events = lag.offered
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while records.llen(noop.RECORD_KEY) < lag.sent and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        done = _read_records(records, noop.RECORD_KEY)
        lag.done = len(done)
        lag.unfinished = lag.sent - lag.done
        _fill_percentiles(lag, [d - s for s, d in done])
        return lag


_TASK_DONE = re.compile(
    r"Task orderdesk\.run_event\[[^\]]+\] succeeded in [0-9.e-]+s: (True|False)"
)


def _celery_tasks(log_path: Path) -> tuple[int, int]:
    """run_event tasks finished so far per the worker's log: all, and those that
    returned False (the event was done already, or not leased)."""
    outcomes = Counter(_TASK_DONE.findall(log_path.read_text(errors="replace")))
    return outcomes["True"] + outcomes["False"], outcomes["False"]


def _fill_percentiles(lag: Lag, seconds: list[float]) -> None:
    lag.p50_ms = 1000 * percentile(seconds, 50)
    lag.p99_ms = 1000 * percentile(seconds, 99)
    lag.max_ms = 1000 * max(seconds, default=0.0)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _record_url(broker_url: str) -> str:
    return broker_url if broker_url.startswith("redis") else DEFAULT_BROKER_URL


def _records_client(broker_url: str) -> Any:
    import redis

    return redis.Redis.from_url(_record_url(broker_url))


def _read_records(records: Any, key: str) -> list[tuple[float, float]]:
    out = []
    for raw in records.lrange(key, 0, -1):
        sent, done = raw.decode().split()
        out.append((float(sent), float(done)))
    return out


def flush_broker(broker_url: str) -> None:
    """Empty the bench's broker: FLUSHDB of its own Redis database, or a purge of
    the default queue on another broker."""
    if broker_url.startswith("redis"):
        import redis

        redis.Redis.from_url(broker_url).flushdb()
        return
    sys.path.insert(0, str(BENCH_DIR))
    import outbox_noop

    outbox_noop.make_app(broker_url).control.purge()


# ---------------------------------------------------------------------- report

HEADER = (
    f"{'runner':<34} {'events/s':>8} {'wall s':>6} {'re-lsd':>6} {'rate':>5} {'lag p50':>8}"
    f" {'p99 ms':>7} {'max ms':>7} {'app ms/ev':>9} {'db ms/ev':>8} {'brk ms/ev':>9}"
    f" {'other':>5} {'load1':>5}"
)


def _row(r: RunResult) -> str:
    t, lag = r.throughput, r.lag
    return (
        f"{r.name:<34} {t.events_per_second:>8.1f} {t.start_to_last_seconds:>6.1f}"
        f" {t.re_leased:>6} {lag.rate:>5.1f} {lag.p50_ms:>8.0f} {lag.p99_ms:>7.0f}"
        f" {lag.max_ms:>7.0f} {t.per_event_ms(t.cpu.app):>9.2f} {t.per_event_ms(t.cpu.db):>8.2f}"
        f" {t.per_event_ms(t.cpu.broker):>9.2f}"
        f" {max(t.cpu.other_cores, lag.cpu.other_cores):>5.2f} {t.cpu.load1:>5.2f}"
    )


def ratios(results: list[RunResult]) -> dict[str, float]:
    by_key = {(r.kind, r.workers, bool(r.settings)): r for r in results}
    found: dict[str, float] = {}
    for r in results:
        if r.kind == "baseline" or r.settings:
            continue
        base = by_key.get(("baseline", 1 if r.kind == "inprocess" else r.workers, False))
        if base is None:
            continue
        label = f"{r.name} / baseline x{base.workers}"
        if base.throughput.events_per_second:
            found[f"{label} (events/s)"] = (
                r.throughput.events_per_second / base.throughput.events_per_second
            )
        base_app = base.throughput.per_event_ms(base.throughput.cpu.app)
        if base_app:
            found[f"{label} (app CPU per event)"] = (
                r.throughput.per_event_ms(r.throughput.cpu.app) / base_app
            )
        if base.lag.p99_ms:
            found[f"{label} (lag p99)"] = r.lag.p99_ms / base.lag.p99_ms
    return found


def report(
    started_at: datetime,
    info: dict[str, Any],
    args: argparse.Namespace,
    shop: Shop | None,
    results: list[RunResult],
) -> Path:
    found = ratios(results)
    print()
    print(HEADER)
    for r in results:
        print(_row(r))
    print()
    for name, value in found.items():
        print(f"{name:<60} {value:7.3f}")
    for r in results:
        for note in (r.throughput.note, r.lag.note):
            if note:
                print(f"NOTE {r.name}: {note}")
        if r.throughput.re_leased:
            print(
                f"NOTE {r.name}: {r.throughput.re_leased} events were leased more than once "
                f"(max attempts {r.throughput.max_attempts}) while the backlog drained; "
                f"the worker ran {r.throughput.tasks} tasks for {r.throughput.events} events, "
                f"{r.throughput.tasks_without_work} of them without work"
            )
        if r.throughput.duplicate_mails or r.lag.duplicate_mails:
            print(
                f"NOTE {r.name}: duplicate order mails: {r.throughput.duplicate_mails} "
                f"(throughput), {r.lag.duplicate_mails} (lag)"
            )
    return write_results(
        "outbox",
        started_at,
        info,
        {
            "settings": {k: v for k, v in vars(args).items() if k != "admin_url"},
            "backlog": (
                asdict(shop)
                | {"customers": len(shop.customers), "product_ids": len(shop.product_ids)}
                if shop
                else None
            ),
            "results": [r.summary() for r in results],
            "ratios": found,
        },
    )


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="orderdesk outbox throughput benchmark")
    parser.add_argument("--events", type=int, default=1200, help="backlog size (events)")
    parser.add_argument("--lag-seconds", type=float, default=15.0, help="lag producer duration")
    parser.add_argument(
        "--load", type=float, default=0.5, help="lag rate as a fraction of measured capacity"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="fixed lag rate in events/s (overrides --load)"
    )
    parser.add_argument("--workers", default="1,2", help="Celery worker processes, e.g. 1,2")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--skip-celery", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--what-if",
        action="append",
        default=[],
        metavar="SETTING=VALUE[,...]",
        help="also run the in-process runner with these ORDERDESK_* settings, e.g. "
        "relay_interval_seconds=0.05 (repeatable)",
    )
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL),
        help="the bench's own broker; a Redis database is FLUSHed (env BENCH_BROKER_URL)",
    )
    parser.add_argument(
        "--mailer", choices=("smtp", "log"), default="smtp", help="SMTP sink, or the log mailer"
    )
    add_database_args(parser, "orderdesk_bench_outbox")
    parser.add_argument(
        "--timeout", type=float, default=240.0, help="seconds allowed for one backlog"
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the process logs")
    return parser.parse_args(argv)


@contextlib.contextmanager
def optional_sink(enabled: bool) -> Iterator[Sink | None]:
    if not enabled:
        yield None
        return
    with Sink() as sink:
        yield sink


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not ORDERDESK.exists() or not CELERY.exists():
        print(f"{ORDERDESK} or {CELERY} is missing: build the venv first", file=sys.stderr)
        return 2
    workers_list = [int(w) for w in args.workers.split(",") if w.strip()]
    workdir, started_at, info = begin(
        "orderdesk outbox bench", "orderdesk-bench-outbox-", commit=True
    )
    results: list[RunResult] = []
    shop: Shop | None = None
    bench: Bench | None = None
    try:
        with optional_sink(args.mailer == "smtp") as sink:
            bench = Bench(args, workdir, sink)
            shop = bench.build_template()
            print(HEADER, flush=True)
            if not args.skip_inprocess:
                results.append(bench.run_orderdesk("inprocess", 1, shop))
                for variant in args.what_if:
                    settings = dict(item.split("=", 1) for item in variant.split(","))
                    results.append(bench.run_orderdesk("inprocess", 1, shop, **settings))
            for workers in workers_list:
                rate = args.rate
                if not args.skip_celery:
                    celery = bench.run_orderdesk("celery", workers, shop)
                    results.append(celery)
                    rate = rate or celery.lag.rate
                if not args.skip_baseline:
                    if not rate and results:
                        rate = results[0].lag.rate
                    results.append(bench.run_baseline(workers, shop.events, rate or 50.0))
    finally:
        if bench is not None:
            for name in (bench.run_db, bench.template):
                with contextlib.suppress(Exception):
                    drop_database(args.admin_url, name)
        with contextlib.suppress(Exception):
            flush_broker(args.broker_url)
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report(started_at, info, args, shop, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

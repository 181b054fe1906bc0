"""orderdesk's HTTP and import benchmark, with a no-framework baseline in the same run.

    .venv/bin/python bench/run.py [--duration 10] [--warmup 3] [--rounds 2] [--connections 32]
                                  [--workers 1,2] [--import-rows 100000]
                                  [--skip-http] [--skip-import] [--keep-workdir]

What it does, start to finish (bench/README.md says why, and what the numbers mean):

1. for each worker count, on a fresh PostgreSQL database (`orderdesk_bench_w<N>`,
   dropped afterwards): `orderdesk migrate upgrade`, `orderdesk create-admin`,
   `orderdesk import-products` of a 1,000-product catalog; then `orderdesk serve
   --workers N` and seeding through the public API (three products with stock that
   cannot run out, a customer who registers, signs in and places a three-line order);
2. starts the raw ASGI + asyncpg app (bench/raw_app.py, the same uvicorn settings)
   beside it, checks that both answer the read with the same JSON, and drives each
   scenario with `wrk` (a separate process, `--connections` keep-alive connections):
   a warm-up that is thrown away, then the measurement. Alongside wrk's req/s and
   latency percentiles it records the CPU time the server processes, the database
   backends, wrk and everybody else spent during the run;
3. measures how fast orderdesk's in-process outbox relay works off the events the
   create runs left behind (the relay is parked while the scenarios run);
4. times `orderdesk import-products` of generated products on PostgreSQL and SQLite;
5. prints a table and writes everything to bench/results/orders-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
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
    dsn,
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

WRK_SCRIPT = BENCH_DIR / "wrk.lua"
RAW_APP = BENCH_DIR / "raw_app.py"
SPREAD_PRODUCTS = 1000  # the catalog the "spread" create scenario draws from
SETTLE_SECONDS = 1.0  # after a warm-up, for the requests wrk left in flight
IDLE_CPU_FRACTION = 0.05  # a server below this share of a core is idle...
IDLE_WINDOW_SECONDS = 0.5  # ...over this window
IDLE_TIMEOUT_SECONDS = 30.0
DRAIN_SECONDS = 8  # how long the outbox relay is watched working off the backlog


@dataclass
class Measurement:
    """One scenario against one server: the sum of its wrk bursts."""

    name: str
    server: str
    workers: int
    url: str
    bursts: int = 0
    requests: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    # Percentiles cannot be merged across bursts: p50 is the mean of the bursts'
    # medians, p99 and max the worst burst's.
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    # Server and database CPU cover the bursts plus the tail of requests in flight
    # when wrk stopped, so they are divided by `cpu_requests` (completed + tail).
    cpu_requests: int = 0
    app_cpu_seconds: float = 0.0
    db_cpu_seconds: float = 0.0
    wrk_cpu_seconds: float = 0.0
    # CPU the whole machine spent during the bursts that was not this server, its
    # database backends or wrk: other people's work, i.e. noise.
    other_cpu_seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def app_cpu_ms_per_req(self) -> float:
        return 1000 * self.app_cpu_seconds / self.cpu_requests if self.cpu_requests else 0.0

    @property
    def db_cpu_ms_per_req(self) -> float:
        return 1000 * self.db_cpu_seconds / self.cpu_requests if self.cpu_requests else 0.0

    @property
    def wrk_cpu_ms_per_req(self) -> float:
        return 1000 * self.wrk_cpu_seconds / self.requests if self.requests else 0.0

    @property
    def other_cores(self) -> float:
        return self.other_cpu_seconds / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rps": round(self.rps, 1),
            "failed": self.failed,
            "app_cpu_ms_per_req": round(self.app_cpu_ms_per_req, 3),
            "db_cpu_ms_per_req": round(self.db_cpu_ms_per_req, 3),
            "wrk_cpu_ms_per_req": round(self.wrk_cpu_ms_per_req, 3),
            "other_cores": round(self.other_cores, 2),
        }


@dataclass
class ImportTiming:
    backend: str
    rows: int
    seconds: float
    startup_seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class Drain:
    """The outbox events placed orders leave behind (order mail, webhook fan-out), as
    orderdesk's in-process relay (the MVP tier) works them off after the runs."""

    seconds: float = 0.0
    events_done: int = 0
    backlog_at_start: int = 0
    orders: int = 0
    events_per_order: float = 0.0
    app_cpu_ms_per_event: float = 0.0
    db_cpu_ms_per_event: float = 0.0
    note: str = ""

    @property
    def events_per_second(self) -> float:
        return self.events_done / self.seconds if self.seconds else 0.0

    @property
    def app_cpu_ms_per_order(self) -> float:
        return self.app_cpu_ms_per_event * self.events_per_order


@dataclass
class Fixture:
    """What the seeding produced: who reads which order, and what to POST."""

    token: str
    user_id: str
    token_version: int
    order_id: str
    order_body: str
    expected_order: dict[str, Any]
    spread_products: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- setup


@dataclass
class Server:
    name: str
    workers: int
    base_url: str
    process: Process

    def pids(self) -> list[int]:
        """The server process and all its descendants (uvicorn --workers)."""
        return process_tree([self.process.pid])

    def wait_ready(self, path: str, headers: dict[str, str] | None = None) -> None:
        wait_http_ready(self.process, self.base_url, path, headers)


@contextmanager
def serving(
    name: str, command: list[str], env: dict[str, str], workdir: Path, workers: int, port: int
) -> Iterator[Server]:
    process = Process(f"{name}-w{workers}", command, env, workdir)
    try:
        yield Server(name, workers, f"http://127.0.0.1:{port}", process)
    finally:
        process.stop()


def seed(base_url: str, admin_email: str, admin_password: str) -> Fixture:
    """Products, a customer and one order, all through the public API."""
    with httpx.Client(base_url=base_url + "/api/v1", timeout=30.0) as client:
        admin_token = sign_in(client, admin_email, admin_password)
        product_ids = []
        for n in range(3):
            created = client.post(
                "/products",
                headers={"Authorization": f"Bearer {admin_token}"},
                json={
                    "sku": f"BENCH-{n + 1}",
                    "name": f"Benchmark product {n + 1}",
                    "description": "Stock that a benchmark cannot exhaust.",
                    "price": {"amount": 1000 + 250 * n, "currency": "EUR"},
                    "stock": STOCK,
                },
            )
            expect(created, 201)
            product_ids.append(created.json()["id"])
        email, password = "bench-customer@example.com", secrets.token_urlsafe(24)
        registered = client.post(
            "/auth/register",
            json={"email": email, "password": password, "full_name": "Bench Customer"},
        )
        expect(registered, 201)
        token = sign_in(client, email, password)
        body = json.dumps(
            {"lines": [{"product_id": pid, "quantity": 1} for pid in product_ids]},
            separators=(",", ":"),
        )
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        placed = client.post("/orders", content=body, headers={**auth, "Idempotency-Key": "seed"})
        expect(placed, 201)
        order = placed.json()
        read = client.get(f"/orders/{order['id']}", headers=auth)
        expect(read, 200)
        return Fixture(
            token=token,
            user_id=registered.json()["id"],
            token_version=_token_version(token),
            order_id=order["id"],
            order_body=body,
            expected_order=read.json(),
            spread_products=_product_ids(client, "spread-"),
        )


def _token_version(token: str) -> int:
    """The `ver` claim of an access token, read without verifying it (for the raw
    app's no-JWT route, which takes it from a header): the bench imports nothing
    from orderdesk."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["ver"])


def _product_ids(client: httpx.Client, query: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"q": query, "limit": "200", **({"cursor": cursor} if cursor else {})}
        page = client.get("/products", params=params)
        expect(page, 200)
        ids.extend(item["id"] for item in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            return ids


# ------------------------------------------------------------------ CPU accounting


def wait_idle(server: Server) -> None:
    """Until the server's processes use (almost) no CPU, or IDLE_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS
    pids = server.pids()
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        time.sleep(IDLE_WINDOW_SECONDS)
        if cpu_delta(before, cpu_seconds(pids)) < IDLE_CPU_FRACTION * IDLE_WINDOW_SECONDS:
            return


async def _backend_pids(admin_url: str, database: str) -> list[int]:
    connection = await asyncpg.connect(dsn(admin_url))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


# ------------------------------------------------------------------------- wrk


@dataclass
class Load:
    duration: int
    warmup: int
    connections: int
    threads: int
    admin_url: str
    database: str
    rounds: int = 2


def warm_up(load: Load, measurement: Measurement, server: Server, env: dict[str, str]) -> None:
    """A thrown-away run, then a pause for the requests wrk left in flight."""
    if load.warmup > 0:
        _wrk(load, measurement.url, env, load.warmup)
        time.sleep(SETTLE_SECONDS)
        wait_idle(server)


def burst(
    load: Load, measurement: Measurement, server: Server, env: dict[str, str], seconds: int
) -> None:
    """One measured wrk run, added to `measurement`, with CPU accounting around it.

    Server and database CPU are counted from the start of the burst until the server
    is idle again, so they include the requests still in flight when wrk stopped
    (one per connection); `cpu_requests` counts those too.
    """
    if not measurement.bursts:
        measurement.load_before = os.getloadavg()
    app_pids = server.pids()
    db_pids = asyncio.run(_backend_pids(load.admin_url, load.database))
    app_before, db_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_seconds()
    result = _wrk(load, measurement.url, env, seconds)
    busy = machine_busy_seconds() - busy_before
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    app_during = cpu_delta(app_before, cpu_seconds(app_pids))
    wait_idle(server)
    app_cpu = cpu_delta(app_before, cpu_seconds(app_pids))
    db_pids_after = asyncio.run(_backend_pids(load.admin_url, load.database))
    db_cpu = cpu_delta(db_before, cpu_seconds(db_pids_after))
    wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (
        wrk_before.ru_utime + wrk_before.ru_stime
    )

    m = measurement
    latency = result["latency_us"]
    m.p50_ms = (m.p50_ms * m.bursts + latency["p50"] / 1000) / (m.bursts + 1)
    m.p99_ms = max(m.p99_ms, latency["p99"] / 1000)
    m.max_ms = max(m.max_ms, latency["max"] / 1000)
    m.bursts += 1
    m.requests += int(result["requests"])
    m.cpu_requests += int(result["requests"]) + load.connections
    m.seconds += result["duration_us"] / 1e6
    for name, count in result["errors"].items():
        if count:
            m.errors[name] = m.errors.get(name, 0) + int(count)
    m.app_cpu_seconds += app_cpu
    m.db_cpu_seconds += db_cpu
    m.wrk_cpu_seconds += wrk_cpu
    # (db_cpu includes the short tail after the burst: "other" errs on the low side.)
    m.other_cpu_seconds += max(busy - app_during - wrk_cpu - db_cpu, 0.0)


def _wrk(load: Load, url: str, env: dict[str, str], seconds: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    assert wrk is not None
    completed = subprocess.run(  # noqa: S603 - wrk, found on PATH and checked at start
        [
            wrk,
            f"-t{load.threads}",
            f"-c{load.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
            url,
        ],
        env={**os.environ, **env, **_fresh_keys(env)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise SystemExit(f"wrk printed no result ({completed.returncode}):\n{completed.stderr}")


def _fresh_keys(env: dict[str, str]) -> dict[str, str]:
    """A new Idempotency-Key prefix for every wrk run: a key reused across runs would
    be replayed (or refused while the previous run's request is still in flight)."""
    if "BENCH_KEY_PREFIX" not in env:
        return {}
    return {"BENCH_KEY_PREFIX": "bench-" + secrets.token_hex(6)}


def read_env(fixture: Fixture) -> dict[str, str]:
    return {"BENCH_METHOD": "GET", "BENCH_TOKEN": fixture.token}


def create_env(fixture: Fixture, *, spread: bool = False) -> dict[str, str]:
    """Every request orders the same three products ("hot": all requests queue for
    the same three row locks), or three drawn from a larger catalog ("spread")."""
    env = {
        "BENCH_METHOD": "POST",
        "BENCH_TOKEN": fixture.token,
        "BENCH_BODY": fixture.order_body,
        "BENCH_KEY_PREFIX": "set-per-run",
    }
    if spread:
        env["BENCH_PRODUCTS"] = ",".join(fixture.spread_products)
    return env


# ----------------------------------------------------------------------- import


def write_products_csv(path: Path, rows: int, *, prefix: str = "IMP", stock: int = 0) -> None:
    """`rows` products; stock `stock`, or varied when 0."""
    write_catalog_csv(
        path,
        (
            (
                f"{prefix}-{n:07d}",
                f"Generated product {prefix} {n}",
                f"Generated row {n} of the benchmark catalog.",
                100 + n % 9900,
                "EUR",
                stock or n % 500,
                "true",
            )
            for n in range(rows)
        ),
    )


def time_import(backend: str, env: dict[str, str], workdir: Path, rows: int) -> ImportTiming:
    """Wall time of the whole command (process start to exit), and of a 10-row import
    (the command's fixed cost: interpreter, imports, engine)."""
    small, big = workdir / f"import-{backend}-10.csv", workdir / f"import-{backend}.csv"
    write_products_csv(small, 10)
    write_products_csv(big, rows)
    started = time.perf_counter()
    cli(env, workdir, "import-products", str(small))
    startup = time.perf_counter() - started
    started = time.perf_counter()
    done = cli(env, workdir, "import-products", str(big))
    seconds = time.perf_counter() - started
    if f"imported {rows} products" not in done.stdout:
        raise SystemExit(f"unexpected import output: {done.stdout}")
    timing = ImportTiming(backend, rows, seconds, startup)
    print(
        f"import {backend:<10} {rows} rows in {seconds:6.2f} s = {timing.rows_per_second:8.0f}"
        f" rows/s  (10-row import: {startup:.2f} s)",
        flush=True,
    )
    return timing


# ---------------------------------------------------------------------- report

HEADER = (
    f"{'scenario':<28} {'w':>1} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
    f" {'app ms/req':>10} {'db ms/req':>9} {'wrk ms/req':>10} {'other':>5} {'load1':>5}"
)


def _row(m: Measurement) -> str:
    return (
        f"{m.name:<28} {m.workers:>1} {m.rps:>8.0f} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f}"
        f" {m.failed:>6} {m.app_cpu_ms_per_req:>10.3f} {m.db_cpu_ms_per_req:>9.3f}"
        f" {m.wrk_cpu_ms_per_req:>10.3f} {m.other_cores:>5.2f} {m.load_before[0]:>5.2f}"
    )


def ratios(measurements: list[Measurement]) -> dict[str, dict[str, float]]:
    by_key = {(m.name, m.workers): m for m in measurements}
    out: dict[str, dict[str, float]] = {}
    for workers in sorted({m.workers for m in measurements}):
        read = by_key.get(("orderdesk read", workers))
        create = by_key.get(("orderdesk create (spread)", workers))
        create_hot = by_key.get(("orderdesk create (hot)", workers))
        raw = by_key.get(("raw read (jwt)", workers))
        raw_nojwt = by_key.get(("raw read (no jwt)", workers))
        found: dict[str, float] = {}
        if read and raw and raw.rps:
            found["orderdesk_read/raw_read_jwt (req/s)"] = read.rps / raw.rps
            found["raw_read_jwt/orderdesk_read (app CPU per req)"] = (
                raw.app_cpu_ms_per_req / read.app_cpu_ms_per_req if read.app_cpu_ms_per_req else 0.0
            )
        if read and raw_nojwt and raw_nojwt.rps:
            found["orderdesk_read/raw_read_nojwt (req/s)"] = read.rps / raw_nojwt.rps
        if read and create and read.rps:
            found["orderdesk_create_spread/orderdesk_read (req/s)"] = create.rps / read.rps
            if create.app_cpu_ms_per_req:
                found["orderdesk_read/orderdesk_create_spread (app CPU per req)"] = (
                    read.app_cpu_ms_per_req / create.app_cpu_ms_per_req
                )
        if read and create_hot and read.rps:
            found["orderdesk_create_hot/orderdesk_read (req/s)"] = create_hot.rps / read.rps
        out[f"workers={workers}"] = found
    return out


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="orderdesk HTTP and import benchmark")
    parser.add_argument(
        "--duration",
        type=int,
        default=10,
        help="seconds measured per scenario (split into --rounds bursts)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds thrown away per run")
    parser.add_argument(
        "--rounds", type=int, default=2, help="bursts per scenario, run in rotation"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", default="1,2", help="server worker counts, e.g. 1,2")
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    add_database_args(parser, "orderdesk_bench")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and CSV files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. On Debian/Ubuntu: `apt-get install -y wrk` "
            "(as root, after `apt-get update`).",
            file=sys.stderr,
        )
        return 2
    if not ORDERDESK.exists():
        print(f"{ORDERDESK} is missing: install the project into the venv", file=sys.stderr)
        return 2
    workers_list = [int(w) for w in args.workers.split(",") if w.strip()]
    workdir, started_at, info = begin("orderdesk bench", "orderdesk-bench-")
    measurements: list[Measurement] = []
    drains: list[Drain] = []
    imports: list[ImportTiming] = []
    try:
        if not args.skip_http:
            print(HEADER, flush=True)
            for workers in workers_list:
                load = Load(
                    args.duration,
                    args.warmup,
                    args.connections,
                    args.threads,
                    args.admin_url,
                    f"{args.database}_w{workers}",
                    args.rounds,
                )
                with fresh_database(args.admin_url, load.database) as url:
                    env = server_env(url)
                    cli(env, workdir, "migrate", "upgrade")
                    variants = workers == workers_list[0]
                    measurements += http_phase(env, workdir, load, workers, variants=variants)
                    if variants:
                        drains.append(measure_drain(env, workdir, load))
        if not args.skip_import:
            with fresh_database(args.admin_url, f"{args.database}_import") as url:
                env = server_env(url)
                cli(env, workdir, "migrate", "upgrade")
                imports.append(time_import("postgresql", env, workdir, args.import_rows))
            sqlite_url = f"sqlite+aiosqlite:///{workdir / 'import.db'}"
            sqlite_env = server_env(sqlite_url)
            cli(sqlite_env, workdir, "migrate", "upgrade")
            imports.append(time_import("sqlite", sqlite_env, workdir, args.import_rows))
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    report(started_at, info, args, measurements, drains, imports)
    return 0


@contextmanager
def fresh_database(admin_url: str, name: str) -> Iterator[str]:
    """An empty PostgreSQL database for one phase, dropped afterwards."""
    recreate_database(admin_url, name)
    try:
        yield database_url(admin_url, name)
    finally:
        drop_database(admin_url, name)


def http_phase(
    env: dict[str, str], workdir: Path, load: Load, workers: int, *, variants: bool
) -> list[Measurement]:
    """Seed a fresh database, then run every scenario against `workers` workers."""
    admin_email, admin_password = "bench-admin@example.com", secrets.token_urlsafe(24)
    cli(env, workdir, "create-admin", "--email", admin_email, "--password", admin_password)
    catalog = workdir / "spread-catalog.csv"
    write_products_csv(catalog, SPREAD_PRODUCTS, prefix="SPREAD", stock=STOCK)
    cli(env, workdir, "import-products", str(catalog))
    # The outbox relay is parked while measuring (see README): each scenario then
    # measures only its own requests, and work left behind is measured apart.
    parked = {**env, "ORDERDESK_RELAY_INTERVAL_SECONDS": str(PARKED_RELAY_SECONDS)}
    od_port, raw_port = free_port(), free_port()
    orderdesk_cmd = [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(od_port)]
    orderdesk_cmd += ["--workers", str(workers)]
    raw_cmd = [str(PYTHON), str(RAW_APP), "--port", str(raw_port), "--workers", str(workers)]
    measurements: list[Measurement] = []
    with ExitStack() as stack:
        od = stack.enter_context(
            serving("orderdesk", orderdesk_cmd, parked, workdir, workers, od_port)
        )
        raw = stack.enter_context(serving("raw", raw_cmd, env, workdir, workers, raw_port))
        od.wait_ready("/health/ready")
        fixture = seed(od.base_url, admin_email, admin_password)
        order_path = f"{ORDER_PATH}/{fixture.order_id}"
        auth = {"Authorization": f"Bearer {fixture.token}"}
        nojwt = {"X-User-Id": fixture.user_id, "X-Token-Version": str(fixture.token_version)}
        raw.wait_ready(order_path, auth)
        _check_same_body(raw.base_url + order_path, auth, fixture.expected_order)
        _check_same_body(raw.base_url + "/two" + order_path, auth, fixture.expected_order)
        _check_same_body(raw.base_url + "/tx" + order_path, auth, fixture.expected_order)
        _check_same_body(raw.base_url + "/nojwt" + order_path, nojwt, fixture.expected_order)
        scenarios: list[tuple[str, Server, str, dict[str, str]]] = [
            ("orderdesk read", od, order_path, read_env(fixture)),
            ("raw read (jwt)", raw, order_path, read_env(fixture)),
        ]
        if variants:  # once, to keep the whole run short
            nojwt_env = {
                "BENCH_METHOD": "GET",
                "BENCH_USER_ID": fixture.user_id,
                "BENCH_TOKEN_VERSION": str(fixture.token_version),
            }
            scenarios.append(("raw read (no jwt)", raw, "/nojwt" + order_path, nojwt_env))
            scenarios.append(
                ("raw read (jwt, 2 statements)", raw, "/two" + order_path, read_env(fixture))
            )
            scenarios.append(("raw read (jwt, in tx)", raw, "/tx" + order_path, read_env(fixture)))
        # Last, so the orders they add cannot slow the reads above.
        scenarios.append(("orderdesk create (hot)", od, ORDER_PATH, create_env(fixture)))
        scenarios.append(
            ("orderdesk create (spread)", od, ORDER_PATH, create_env(fixture, spread=True))
        )
        runs = [
            (Measurement(name, server.name, workers, server.base_url + path), server, wrk_env)
            for name, server, path, wrk_env in scenarios
        ]
        for measurement, server, wrk_env in runs:
            warm_up(load, measurement, server, wrk_env)
        # Every scenario gets `rounds` bursts, in rotation (reversed every other
        # round), so that all of them share whatever else the machine is doing.
        seconds = max(1, round(load.duration / load.rounds))
        for round_number in range(load.rounds):
            order = runs if round_number % 2 == 0 else runs[::-1]
            for measurement, server, wrk_env in order:
                burst(load, measurement, server, wrk_env, seconds)
        for measurement, _, _ in runs:
            print(_row(measurement), flush=True)
            measurements.append(measurement)
    return measurements


def measure_drain(env: dict[str, str], workdir: Path, load: Load) -> Drain:
    """Start `orderdesk serve` with its relay running on the database the create runs
    filled, and watch it for DRAIN_SECONDS: events done, and CPU per event."""
    drain = Drain()
    port = free_port()
    command = [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with serving("orderdesk-relay", command, env, workdir, 1, port) as server:
        server.wait_ready("/health/ready")
        try:
            before = asyncio.run(_outbox_counts(load))
        except asyncpg.PostgresError as exc:  # the outbox's shape changed
            drain.note = f"outbox not measured: {exc}"
            return drain
        app_pids = server.pids()
        db_pids = asyncio.run(_backend_pids(load.admin_url, load.database))
        app_before, db_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
        started = time.monotonic()
        time.sleep(DRAIN_SECONDS)
        after = asyncio.run(_outbox_counts(load))
        drain.seconds = time.monotonic() - started
        app_cpu = cpu_delta(app_before, cpu_seconds(app_pids))
        db_pids = asyncio.run(_backend_pids(load.admin_url, load.database))
        db_cpu = cpu_delta(db_before, cpu_seconds(db_pids))
    drain.events_done = after["done"] - before["done"]
    drain.backlog_at_start = before["open"]
    drain.orders = after["orders"]
    drain.events_per_order = after["order_placed"] / max(after["orders"], 1)
    per_event = 1000 / max(drain.events_done, 1)
    drain.app_cpu_ms_per_event = app_cpu * per_event
    drain.db_cpu_ms_per_event = db_cpu * per_event
    print(
        f"outbox drain: {drain.events_done} events in {drain.seconds:.0f} s "
        f"({drain.events_per_second:.0f}/s, backlog was {drain.backlog_at_start}), "
        f"{drain.app_cpu_ms_per_event:.2f} ms app CPU and {drain.db_cpu_ms_per_event:.2f} ms "
        f"db CPU per event, {drain.events_per_order:.1f} events per order",
        flush=True,
    )
    return drain


async def _outbox_counts(load: Load) -> dict[str, int]:
    connection = await asyncpg.connect(db_dsn(load.admin_url, load.database))
    try:
        row = await connection.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'done') AS done,"
            " count(*) FILTER (WHERE status IN ('pending', 'running')) AS open,"
            " count(*) FILTER (WHERE topic = 'order.placed') AS order_placed,"
            " (SELECT count(*) FROM orders) AS orders"
            " FROM outbox_events"
        )
    finally:
        await connection.close()
    return {key: int(row[key]) for key in ("done", "open", "order_placed", "orders")}


def _check_same_body(url: str, headers: dict[str, str], expected: dict[str, Any]) -> None:
    """The baseline must answer what orderdesk answers, or the comparison is void."""
    body = httpx.get(url, headers=headers, timeout=5.0).json()
    if body != expected:
        raise SystemExit(f"raw app's body differs from orderdesk's:\n{body}\n{expected}")


def report(
    started_at: datetime,
    info: dict[str, Any],
    args: argparse.Namespace,
    measurements: list[Measurement],
    drains: list[Drain],
    imports: list[ImportTiming],
) -> None:
    found = ratios(measurements)
    print()
    if measurements:
        print(HEADER)
        for m in measurements:
            print(_row(m))
        print()
        for group, values in found.items():
            for name, value in values.items():
                print(f"{group:<10} {name:<56} {value:6.3f}")
        for m in measurements:
            if m.failed:
                print(f"WARNING: {m.name} (workers={m.workers}) had {m.errors}: not comparable")
    for drain in drains:
        print(
            f"outbox drain (in-process relay): {drain.events_per_second:.0f} events/s, "
            f"{drain.app_cpu_ms_per_event:.2f} ms app CPU per event, "
            f"{drain.events_per_order:.1f} events per order "
            f"= {drain.app_cpu_ms_per_order:.2f} ms app CPU per order {drain.note}".rstrip()
        )
    for timing in imports:
        print(
            f"import {timing.backend:<10} {timing.rows} rows: {timing.seconds:.2f} s, "
            f"{timing.rows_per_second:.0f} rows/s (fixed cost ~{timing.startup_seconds:.2f} s)"
        )
    write_results(
        "orders",
        started_at,
        info,
        {
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "connections": args.connections,
                "wrk_threads": args.threads,
            },
            "measurements": [m.summary() for m in measurements],
            "ratios": found,
            "outbox_drain": [
                {
                    **asdict(d),
                    "events_per_second": round(d.events_per_second, 1),
                    "app_cpu_ms_per_order": round(d.app_cpu_ms_per_order, 2),
                }
                for d in drains
            ],
            "imports": [
                {**asdict(t), "rows_per_second": round(t.rows_per_second)} for t in imports
            ],
        },
    )


if __name__ == "__main__":
    sys.exit(main())

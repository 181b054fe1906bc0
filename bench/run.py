"""orderdesk's HTTP and import benchmark, with a no-framework baseline in the same run.

    .venv/bin/python bench/run.py [--duration 10] [--warmup 3] [--rounds 2] [--connections 32]
                                  [--workers 1,2] [--import-rows 100000]
                                  [--before-ref REF [--before-raw]]
                                  [--skip-http] [--skip-import] [--keep-workdir]

What it does, start to finish (bench/README.md says why, and what the numbers mean):

1. for each worker count, on a fresh PostgreSQL database (`orderdesk_bench_w<N>`,
   dropped afterwards): `orderdesk migrate upgrade`, `orderdesk create-admin`,
   `orderdesk import-products` of a 1,000-product catalog; then `orderdesk serve
   --workers N` and seeding through the public API (three products with stock that
   cannot run out, a customer who registers, signs in and places a three-line order);
   with `--before-ref REF`, the same for orderdesk as of REF, on its own database
   (`orderdesk_bench_before_w<N>`), from a temporary `git worktree` of REF run with
   this venv as `python -m orderdesk` (PYTHONPATH=<worktree>/src);
2. starts the raw ASGI + asyncpg app (bench/raw_app.py, the same uvicorn settings)
   beside them, checks that it answers the read with orderdesk's JSON, and drives
   each scenario with `wrk` (a separate process, `--connections` keep-alive
   connections): a warm-up that is thrown away, then the measured bursts, all
   scenarios of both versions interleaved. Alongside wrk's req/s and latency
   percentiles it records the CPU time the server processes, the database backends,
   wrk and everybody else spent during the run;
3. measures how fast orderdesk's in-process outbox relay works off the events the
   create runs left behind (the relay is parked while the scenarios run);
4. times `orderdesk import-products` of generated products on PostgreSQL and SQLite;
5. prints a table (and with --before-ref the ratios before and after side by side)
   and writes everything to bench/results/orders-<timestamp>.json.

The bench imports nothing from orderdesk: it talks to it through its CLI and HTTP.
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
    REPO_DIR,
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
    git,
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
# One orderdesk worker's pool (ORDERDESK_DATABASE_POOL_SIZE's default; no overflow)
# and the raw app's. A phase runs every pool beside the others, and the bench needs
# a few connections of its own, so when PostgreSQL's max_connections cannot hold
# them all at this size, every pool in the phase gets the same smaller size.
POOL_SIZE = 20
CONNECTIONS_KEPT_FREE = 8


@dataclass
class Measurement:
    """One scenario against one server: the sum of its wrk bursts."""

    name: str
    server: str
    workers: int
    url: str
    # Which orderdesk: "after" (the working tree), "before" (--before-ref), or ""
    # for the bench's own baseline, which is the same for both.
    version: str = "after"
    pool_size: int = POOL_SIZE  # per server process, the same for all in a phase
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


@dataclass(frozen=True)
class Version:
    """An orderdesk to measure: the working tree, through the venv's `orderdesk`
    script, or a commit checked out in a temporary worktree (`--before-ref`), run as
    `python -m orderdesk` with that worktree's `src` first on the path. The bench
    talks to either only through its CLI and HTTP."""

    name: str  # "after" or "before"
    label: str  # "working tree" or the commit
    program: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    tree: Path = REPO_DIR

    def cli(self, env: dict[str, str], workdir: Path, *args: str) -> None:
        cli({**env, **self.env}, workdir, *args, program=self.program)

    def serve(self, port: int, workers: int | None = None) -> list[str]:
        command = [*self.program, "serve", "--host", "127.0.0.1", "--port", str(port)]
        return command + (["--workers", str(workers)] if workers else [])

    def imported_from(self, workdir: Path) -> Path:
        """Where this version's `import orderdesk` really comes from."""
        probe = "import orderdesk; print(orderdesk.__file__)"
        completed = subprocess.run(  # noqa: S603 - our own venv's python
            [str(PYTHON), "-c", probe],
            env={**os.environ, **self.env},
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"{self.label}: `{probe}` failed:\n{completed.stderr[-2000:]}")
        return Path(completed.stdout.strip()).resolve()


AFTER = Version("after", "working tree", (str(ORDERDESK),))


@contextmanager
def before_version(ref: str, workdir: Path) -> Iterator[Version]:
    """`ref` checked out in a temporary worktree (removed afterwards), and how to run
    it with this venv: its dependencies are the same, only its own code differs."""
    commit = git("rev-parse", "--short", f"{ref}^{{commit}}")
    if not commit:
        raise SystemExit(f"--before-ref {ref}: not a commit in {REPO_DIR}")
    tree = workdir / f"before-{commit}"
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        version = Version(
            "before",
            commit,
            (str(PYTHON), "-m", "orderdesk"),
            {"PYTHONPATH": str(tree / "src")},
            tree,
        )
        # The project is installed editable (a path in a .pth file, which comes after
        # PYTHONPATH); make sure the worktree's copy is the one that is imported.
        found = version.imported_from(workdir)
        if not found.is_relative_to(tree / "src"):
            raise SystemExit(f"--before-ref: `import orderdesk` found {found}, not {tree}")
        yield version
    finally:
        _git("worktree", "remove", "--force", str(tree))


def _git(*args: str) -> None:
    executable = shutil.which("git")
    if executable is None:
        raise SystemExit("--before-ref needs git")
    completed = subprocess.run(  # noqa: S603 - git worktree add/remove
        [executable, *args], cwd=REPO_DIR, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed:\n{completed.stderr}")


@dataclass
class Server:
    name: str
    workers: int
    base_url: str
    process: Process
    database: str  # whose backends' CPU is counted as "db"

    def pids(self) -> list[int]:
        """The server process and all its descendants (uvicorn --workers)."""
        return process_tree([self.process.pid])

    def wait_ready(self, path: str, headers: dict[str, str] | None = None) -> None:
        wait_http_ready(self.process, self.base_url, path, headers)


@contextmanager
def serving(
    name: str,
    command: list[str],
    env: dict[str, str],
    workdir: Path,
    workers: int,
    port: int,
    database: str,
) -> Iterator[Server]:
    process = Process(f"{name}-w{workers}", command, env, workdir)
    try:
        yield Server(name, workers, f"http://127.0.0.1:{port}", process, database)
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


async def _pool_size(admin_url: str, processes: int) -> int:
    """POOL_SIZE, or less if `processes` pools of it would not fit in PostgreSQL's
    free connections (less CONNECTIONS_KEPT_FREE)."""
    connection = await asyncpg.connect(dsn(admin_url))
    try:
        free = await connection.fetchval(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        )
    finally:
        await connection.close()
    return max(1, min(POOL_SIZE, (int(free) - CONNECTIONS_KEPT_FREE) // processes))


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
    db_pids = asyncio.run(_backend_pids(load.admin_url, server.database))
    app_before, db_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_seconds()
    result = _wrk(load, measurement.url, env, seconds)
    busy = machine_busy_seconds() - busy_before
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    app_during = cpu_delta(app_before, cpu_seconds(app_pids))
    wait_idle(server)
    app_cpu = cpu_delta(app_before, cpu_seconds(app_pids))
    db_pids_after = asyncio.run(_backend_pids(load.admin_url, server.database))
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
    f"{'scenario':<28} {'version':<7} {'w':>1} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
    f" {'errors':>6} {'app ms/req':>10} {'db ms/req':>9} {'wrk ms/req':>10} {'other':>5}"
    f" {'load1':>5}"
)


def _row(m: Measurement) -> str:
    return (
        f"{m.name:<28} {m.version or '-':<7} {m.workers:>1} {m.rps:>8.0f} {m.p50_ms:>7.2f}"
        f" {m.p99_ms:>7.2f} {m.failed:>6} {m.app_cpu_ms_per_req:>10.3f}"
        f" {m.db_cpu_ms_per_req:>9.3f} {m.wrk_cpu_ms_per_req:>10.3f} {m.other_cores:>5.2f}"
        f" {m.load_before[0]:>5.2f}"
    )


def ratios(measurements: list[Measurement], version: str = "after") -> dict[str, dict[str, float]]:
    """One version's ratios, per worker count; both versions are divided by the same
    raw baseline (version "")."""
    by_key = {(m.name, m.workers, m.version): m for m in measurements}
    out: dict[str, dict[str, float]] = {}
    for workers in sorted({m.workers for m in measurements}):
        read = by_key.get(("orderdesk read", workers, version))
        create = by_key.get(("orderdesk create (spread)", workers, version))
        create_hot = by_key.get(("orderdesk create (hot)", workers, version))
        raw = by_key.get(("raw read (jwt)", workers, ""))
        raw_nojwt = by_key.get(("raw read (no jwt)", workers, ""))
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


def raw_speedup(measurements: list[Measurement]) -> dict[str, float]:
    """This tree's raw baseline against the before-ref's bench/raw_app.py (--before-raw)."""
    by_key = {(m.name, m.workers): m for m in measurements}
    out: dict[str, float] = {}
    for workers in sorted({m.workers for m in measurements}):
        new = by_key.get(("raw read (jwt)", workers))
        old = by_key.get((OLD_RAW, workers))
        if new and old and old.rps:
            out[f"workers={workers} raw_read_jwt/before_raw_app (req/s)"] = new.rps / old.rps
            if new.app_cpu_ms_per_req:
                out[f"workers={workers} before_raw_app/raw_read_jwt (app CPU per req)"] = (
                    old.app_cpu_ms_per_req / new.app_cpu_ms_per_req
                )
    return out


def after_over_before(
    after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    return {
        group: {
            name: value / before[group][name]
            for name, value in values.items()
            if before.get(group, {}).get(name)
        }
        for group, values in after.items()
    }


# ------------------------------------------------------------------------ main

OLD_RAW = "raw read (jwt, before's app)"
# For the duration printed at the start: per scenario, the warm-up, the settling and
# idle checks around it and around every burst; per deployment, migrate + create-admin
# + import-products + serve + seeding. Measured on the 2-core VM.
SCENARIO_OVERHEAD_SECONDS = 2.0
BURST_OVERHEAD_SECONDS = 1.0
DEPLOYMENT_SECONDS = 15.0
IMPORT_SECONDS = 45.0


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
    parser.add_argument(
        "--before-ref",
        metavar="REF",
        help="also measure orderdesk as of this git commit, interleaved in the same run "
        "(checked out in a temporary worktree, run with this venv)",
    )
    parser.add_argument(
        "--before-raw",
        action="store_true",
        help="with --before-ref: also measure REF's bench/raw_app.py beside this one",
    )
    add_database_args(parser, "orderdesk_bench")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and CSV files")
    args = parser.parse_args(argv)
    if args.before_raw and not args.before_ref:
        parser.error("--before-raw needs --before-ref")
    return args


def expected_seconds(args: argparse.Namespace, workers_list: list[int]) -> float:
    versions = 2 if args.before_ref else 1
    total = 0.0 if args.skip_import else IMPORT_SECONDS
    if args.skip_http:
        return total
    for index, _ in enumerate(workers_list):
        # Per version: read, create (hot), create (spread); the raw read; on the
        # first worker count the raw variants (no jwt, 2 statements, in tx).
        scenarios = 3 * versions + 1 + (3 if index == 0 else 0) + int(args.before_raw)
        per_scenario = (
            args.warmup
            + args.duration
            + SCENARIO_OVERHEAD_SECONDS
            + args.rounds * BURST_OVERHEAD_SECONDS
        )
        total += versions * DEPLOYMENT_SECONDS + scenarios * per_scenario
        if index == 0:
            total += DRAIN_SECONDS + 5
    return total


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
    print(
        f"expected duration: about {expected_seconds(args, workers_list) / 60:.0f} min", flush=True
    )
    measurements: list[Measurement] = []
    drains: list[Drain] = []
    imports: list[ImportTiming] = []
    try:
        with ExitStack() as stack:
            versions = [AFTER]
            if args.before_ref:
                versions.append(stack.enter_context(before_version(args.before_ref, workdir)))
            info["versions"] = {
                v.name: {"label": v.label, "imports": str(v.imported_from(workdir))}
                for v in versions
            }
            for v in versions:
                print(f"{v.name}: {v.label}, orderdesk from {info['versions'][v.name]['imports']}")
            if not args.skip_http:
                for workers in workers_list:
                    load = Load(
                        args.duration,
                        args.warmup,
                        args.connections,
                        args.threads,
                        args.admin_url,
                        args.rounds,
                    )
                    variants = workers == workers_list[0]
                    found, drain = phase(args, versions, workdir, load, workers, variants=variants)
                    measurements += found
                    if drain:
                        drains.append(drain)
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


@dataclass
class Deployment:
    """One version's database, set up by that version's own CLI."""

    version: Version
    database: str
    env: dict[str, str]
    admin_email: str
    admin_password: str


def deploy(version: Version, database: str, url: str, workdir: Path) -> Deployment:
    """`migrate upgrade`, `create-admin` and `import-products` of the "spread" catalog,
    as a user would, with `version`'s CLI."""
    env = {**server_env(url), **version.env}
    admin_email, admin_password = "bench-admin@example.com", secrets.token_urlsafe(24)
    version.cli(env, workdir, "migrate", "upgrade")
    version.cli(env, workdir, "create-admin", "--email", admin_email, "--password", admin_password)
    catalog = workdir / "spread-catalog.csv"
    write_products_csv(catalog, SPREAD_PRODUCTS, prefix="SPREAD", stock=STOCK)
    version.cli(env, workdir, "import-products", str(catalog))
    return Deployment(version, database, env, admin_email, admin_password)


def phase(
    args: argparse.Namespace,
    versions: list[Version],
    workdir: Path,
    load: Load,
    workers: int,
    *,
    variants: bool,
) -> tuple[list[Measurement], Drain | None]:
    """A fresh database per version, every scenario against `workers` workers, and
    (with `variants`) the outbox drain on the working tree's database."""
    processes = (len(versions) + 1 + int(args.before_raw)) * workers
    pool_size = asyncio.run(_pool_size(args.admin_url, processes))
    if pool_size < POOL_SIZE:
        print(
            f"(w{workers}: PostgreSQL's free connections hold {processes} pools of"
            f" {pool_size}, not {POOL_SIZE}: every server gets {pool_size})",
            flush=True,
        )
    print(HEADER, flush=True)
    with ExitStack() as databases:
        deployments = []
        for version in versions:
            suffix = f"_w{workers}" if version is AFTER else f"_{version.name}_w{workers}"
            database = args.database + suffix
            url = databases.enter_context(fresh_database(args.admin_url, database))
            deployments.append(deploy(version, database, url, workdir))
        measurements = http_phase(
            deployments,
            workdir,
            load,
            workers,
            variants=variants,
            before_raw=args.before_raw,
            pool_size=pool_size,
        )
        drain = measure_drain(deployments[0], workdir, load) if variants else None
    return measurements, drain


def http_phase(
    deployments: list[Deployment],
    workdir: Path,
    load: Load,
    workers: int,
    *,
    variants: bool,
    before_raw: bool,
    pool_size: int,
) -> list[Measurement]:
    """Serve and seed every deployment, start the raw baseline on the first (the
    working tree's) database, then run every scenario, interleaved."""
    after = deployments[0]
    pools = {}
    if pool_size < POOL_SIZE:
        pools = {
            "ORDERDESK_DATABASE_POOL_SIZE": str(pool_size),
            "BENCH_RAW_POOL_SIZE": str(pool_size),
        }
    raw_env = {**after.env, **pools}
    measurements: list[Measurement] = []
    with ExitStack() as stack:
        # The outbox relay is parked while measuring (see README): each scenario then
        # measures only its own requests, and work left behind is measured apart.
        served: list[tuple[Deployment, Server]] = []
        for deployment in deployments:
            port = free_port()
            parked = {
                **deployment.env,
                **pools,
                "ORDERDESK_RELAY_INTERVAL_SECONDS": str(PARKED_RELAY_SECONDS),
            }
            command = deployment.version.serve(port, workers)
            name = "orderdesk" if deployment is after else f"orderdesk-{deployment.version.name}"
            server = stack.enter_context(
                serving(name, command, parked, workdir, workers, port, deployment.database)
            )
            served.append((deployment, server))
        raw_port = free_port()
        raw_cmd = [str(PYTHON), str(RAW_APP), "--port", str(raw_port), "--workers", str(workers)]
        raw = stack.enter_context(
            serving("raw", raw_cmd, raw_env, workdir, workers, raw_port, after.database)
        )
        old_raw: Server | None = None
        if before_raw:
            old_app = deployments[-1].version.tree / "bench" / "raw_app.py"
            if not old_app.exists():
                raise SystemExit(f"--before-raw: {old_app} does not exist")
            old_port = free_port()
            old_cmd = [
                str(PYTHON),
                str(old_app),
                "--port",
                str(old_port),
                "--workers",
                str(workers),
            ]
            old_raw = stack.enter_context(
                serving("raw-before", old_cmd, raw_env, workdir, workers, old_port, after.database)
            )
        fixtures: dict[str, Fixture] = {}
        for deployment, server in served:
            server.wait_ready("/health/ready")
            fixtures[deployment.version.name] = seed(
                server.base_url, deployment.admin_email, deployment.admin_password
            )
        fixture = fixtures["after"]
        order_path = f"{ORDER_PATH}/{fixture.order_id}"
        auth = {"Authorization": f"Bearer {fixture.token}"}
        nojwt = {"X-User-Id": fixture.user_id, "X-Token-Version": str(fixture.token_version)}
        raw.wait_ready(order_path, auth)
        _check_same_body(raw.base_url + order_path, auth, fixture.expected_order)
        _check_same_body(raw.base_url + "/two" + order_path, auth, fixture.expected_order)
        _check_same_body(raw.base_url + "/tx" + order_path, auth, fixture.expected_order)
        _check_same_body(raw.base_url + "/nojwt" + order_path, nojwt, fixture.expected_order)
        if old_raw:
            old_raw.wait_ready(order_path, auth)
            _check_same_body(old_raw.base_url + order_path, auth, fixture.expected_order)

        # (name, version, server, path, wrk env); reads first, creates last, so the
        # orders they add cannot slow the reads (within a round).
        scenarios: list[tuple[str, str, Server, str, dict[str, str]]] = []
        for deployment, server in served:
            mine = fixtures[deployment.version.name]
            scenarios.append(
                (
                    "orderdesk read",
                    deployment.version.name,
                    server,
                    f"{ORDER_PATH}/{mine.order_id}",
                    read_env(mine),
                )
            )
        scenarios.append(("raw read (jwt)", "", raw, order_path, read_env(fixture)))
        if old_raw:
            scenarios.append((OLD_RAW, "", old_raw, order_path, read_env(fixture)))
        if variants:  # once, to keep the whole run short
            nojwt_env = {
                "BENCH_METHOD": "GET",
                "BENCH_USER_ID": fixture.user_id,
                "BENCH_TOKEN_VERSION": str(fixture.token_version),
            }
            scenarios.append(("raw read (no jwt)", "", raw, "/nojwt" + order_path, nojwt_env))
            scenarios.append(
                ("raw read (jwt, 2 statements)", "", raw, "/two" + order_path, read_env(fixture))
            )
            scenarios.append(
                ("raw read (jwt, in tx)", "", raw, "/tx" + order_path, read_env(fixture))
            )
        for name, spread in (
            ("orderdesk create (hot)", False),
            ("orderdesk create (spread)", True),
        ):
            for deployment, server in served:
                mine = fixtures[deployment.version.name]
                env = create_env(mine, spread=spread)
                scenarios.append((name, deployment.version.name, server, ORDER_PATH, env))
        runs = [
            (
                Measurement(name, server.name, workers, server.base_url + path, version, pool_size),
                server,
                wrk_env,
            )
            for name, version, server, path, wrk_env in scenarios
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


def measure_drain(deployment: Deployment, workdir: Path, load: Load) -> Drain:
    """Start `orderdesk serve` with its relay running on the database the create runs
    filled, and watch it for DRAIN_SECONDS: events done, and CPU per event."""
    drain = Drain()
    port = free_port()
    command = deployment.version.serve(port)
    database = deployment.database
    env = deployment.env
    with serving("orderdesk-relay", command, env, workdir, 1, port, database) as server:
        server.wait_ready("/health/ready")
        try:
            before = asyncio.run(_outbox_counts(load.admin_url, database))
        except asyncpg.PostgresError as exc:  # the outbox's shape changed
            drain.note = f"outbox not measured: {exc}"
            return drain
        app_pids = server.pids()
        db_pids = asyncio.run(_backend_pids(load.admin_url, database))
        app_before, db_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
        started = time.monotonic()
        time.sleep(DRAIN_SECONDS)
        after = asyncio.run(_outbox_counts(load.admin_url, database))
        drain.seconds = time.monotonic() - started
        app_cpu = cpu_delta(app_before, cpu_seconds(app_pids))
        db_pids = asyncio.run(_backend_pids(load.admin_url, database))
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


async def _outbox_counts(admin_url: str, database: str) -> dict[str, int]:
    connection = await asyncpg.connect(db_dsn(admin_url, database))
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


def _print_comparison(
    after: dict[str, dict[str, float]],
    before: dict[str, dict[str, float]],
    label: str,
) -> None:
    print(f"\n{'ratio':<58} {'w':>1} {'before':>7} {'after':>7} {'after/before':>12}")
    print(f"{'(before = ' + label + ', after = working tree)':<58}")
    for group, values in after.items():
        workers = group.removeprefix("workers=")
        for name, value in values.items():
            old = before.get(group, {}).get(name)
            quotient = f"{value / old:12.3f}" if old else f"{'':>12}"
            shown = f"{old:7.3f}" if old is not None else f"{'':>7}"
            print(f"{name:<58} {workers:>1} {shown} {value:7.3f} {quotient}")


def report(
    started_at: datetime,
    info: dict[str, Any],
    args: argparse.Namespace,
    measurements: list[Measurement],
    drains: list[Drain],
    imports: list[ImportTiming],
) -> None:
    found = ratios(measurements)
    before = ratios(measurements, "before") if args.before_ref else {}
    speedup = raw_speedup(measurements)
    print()
    if measurements:
        print(HEADER)
        for m in measurements:
            print(_row(m))
        print()
        if before:
            _print_comparison(found, before, info["versions"]["before"]["label"])
        else:
            for group, values in found.items():
                for name, value in values.items():
                    print(f"{group:<10} {name:<56} {value:6.3f}")
        for name, value in speedup.items():
            print(f"{name:<69} {value:6.3f}")
        for m in measurements:
            if m.failed:
                print(
                    f"WARNING: {m.name} ({m.version or 'raw'}, workers={m.workers}) had"
                    f" {m.errors}: not comparable"
                )
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
                "before_ref": args.before_ref,
            },
            "measurements": [m.summary() for m in measurements],
            "ratios": found,
            "before_ratios": before,
            "after_over_before": after_over_before(found, before) if before else {},
            "raw_speedup": speedup,
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

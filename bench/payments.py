"""orderdesk's payment benchmark: `POST /api/v1/orders/{id}/pay` through the sandbox
gateway as a separate process, and whether another route waits while pays wait on it.

    .venv/bin/python bench/payments.py [--duration 30] [--rounds 3] [--warmup 3]
                                       [--concurrency 32] [--read-rate 50] [--latency-ms 200]
                                       [--workers 1] [--customers 8] [--max-orders 20000]
                                       [--park-relay] [--keep-workdir]

What it does, start to finish (bench/README.md, "payments.py", says what the numbers mean):

1. a fresh PostgreSQL database (`orderdesk_bench_pay`, dropped afterwards) set up by
   the CLI (`migrate upgrade`, `create-admin`); `orderdesk sandbox-gateway` and
   `orderdesk serve --workers N` as two processes, the server paying through the
   sandbox over HTTP (the Stripe SDK on the wire, production settings with
   ORDERDESK_PAYMENT_SANDBOX_ALLOWED) and the sandbox sending its signed webhooks back;
2. seeding through the public API only: one product with stock that cannot run out,
   `--customers` payers who register and sign in, a reader with one order of its own,
   and unpaid orders for the payers, as many as the warm-up's pay rate says the run
   will use (bounded by `--max-orders` and a time limit; progress is printed);
3. three scenarios, each measured in `--rounds` bursts, in rotation (reversed every
   other round) so that they share whatever else the machine is doing:
   - idle: only the reads;
   - pay +0 ms: the reads, and a closed-loop pay load of `--concurrency` clients, each
     paying a fresh unpaid order per request (`pm_card_visa`, its own Idempotency-Key);
   - pay +N ms: the same with the sandbox's `latency` fault on every POST to `/v1/*`
     (`--latency-ms`, set and cleared through `/_sandbox/faults` between bursts);
   the reads are `GET /api/v1/orders/{id}` at a fixed rate (`--read-rate`, open loop)
   from their own process; the pays come from another process (this script run with
   `--load SPEC`, asyncio + httpx), so nothing that loads the server runs in it;
4. checks what the payments left behind: orders paid against 200 answers, charges in
   the sandbox's ledger (no order charged twice), webhook deliveries that failed;
5. prints a table and the ratios, and writes everything to
   bench/results/payments-<timestamp>.json.

The bench imports nothing from orderdesk: it talks to it through its CLI and HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from common import (
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
    write_results,
)

API = "/api/v1"
PAYMENT_METHOD = "pm_card_visa"  # Stripe's test card that always succeeds
PRICE = {"amount": 1299, "currency": "EUR"}
SANDBOX_KEY = "sk_test_orderdesk_bench_" + "0" * 8  # the sandbox accepts any test key
START_DELAY_SECONDS = 1.5  # load processes start (imports) before their common start
REQUEST_TIMEOUT_SECONDS = 30.0  # per request, in the load processes
READ_MAX_IN_FLIGHT = 64  # the read load waits (and its latency shows it) beyond this
IDLE_CPU_FRACTION = 0.05  # the server and the sandbox below this share of a core...
IDLE_WINDOW_SECONDS = 0.5  # ...over this window are idle
IDLE_TIMEOUT_SECONDS = 90.0  # the outbox may still be applying the webhooks of a burst
SEED_CONCURRENCY = 16
SEED_TIMEOUT_SECONDS = 180.0
ORDER_MARGIN = 1.4  # orders seeded per order the warm-up rate says a burst needs
# For the duration printed at the start: set-up (migrate, create-admin, two servers,
# sign-ups), the order-seeding rate, and the wait for the outbox after a pay burst
# (per measured second). Measured on the 2-core VM.
SETUP_SECONDS = 25.0
SEED_ORDERS_PER_SECOND = 150.0
DRAIN_PER_PAY_SECOND = 1.0
ASSUMED_PAY_RATE = 80.0  # before the warm-up has measured it


# ------------------------------------------------------------------ load processes


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def _event_loop_policy() -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _until(start_at: float) -> float:
    """Sleep until wall-clock `start_at` (shared by the load processes); the loop's
    clock at that moment."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    return asyncio.get_running_loop().time()


def _record_error(samples: dict[str, list[str]], status: str, text: str) -> None:
    kept = samples.setdefault(status, [])
    if len(kept) < 3:
        kept.append(text[:400])


async def pay_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed loop: `concurrency` clients, each paying the next unpaid order of the
    file until `seconds` have passed or the orders run out. Every order is paid at
    most once (a fresh Idempotency-Key each)."""
    orders: list[list[Any]] = spec["orders"]
    tokens: list[str] = spec["tokens"]
    seconds: float = spec["seconds"]
    body = json.dumps({"payment_method": PAYMENT_METHOD}).encode()
    statuses: Counter[str] = Counter()
    samples: dict[str, list[str]] = {}
    latencies: list[float] = []  # ms, every answer to a request started in the window
    in_window = 0  # answers received inside the window: the throughput
    taken = 0
    exhausted_at: float | None = None
    limits = httpx.Limits(
        max_connections=spec["concurrency"], max_keepalive_connections=spec["concurrency"]
    )
    async with httpx.AsyncClient(
        base_url=spec["base_url"], timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
    ) as client:
        loop = asyncio.get_running_loop()
        start = await _until(spec["start_at"])
        end = start + seconds

        async def lane() -> None:
            nonlocal taken, in_window, exhausted_at
            while loop.time() < end:
                if taken >= len(orders):
                    exhausted_at = exhausted_at or loop.time()
                    return
                order_id, customer = orders[taken]
                taken += 1
                headers = {
                    "Authorization": f"Bearer {tokens[customer]}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": uuid.uuid4().hex,
                }
                sent = time.perf_counter()  # uvloop's loop.time() has 1 ms resolution
                try:
                    answer = await client.post(
                        f"{API}/orders/{order_id}/pay", content=body, headers=headers
                    )
                    status = str(answer.status_code)
                    if answer.status_code != 200:
                        _record_error(samples, status, f"{order_id}: {answer.text}")
                except httpx.HTTPError as exc:
                    status = f"transport:{type(exc).__name__}"
                    _record_error(samples, status, f"{order_id}: {exc!r}")
                done = time.perf_counter()
                statuses[status] += 1
                latencies.append(round(1000 * (done - sent), 3))
                if loop.time() <= end:
                    in_window += 1

        await asyncio.gather(*(lane() for _ in range(spec["concurrency"])))
    window = (exhausted_at - start) if exhausted_at is not None else seconds
    return {
        "kind": "pay",
        "window_seconds": round(window, 3),
        "in_window": in_window,
        "taken": taken,
        "exhausted": exhausted_at is not None,
        "statuses": dict(statuses),
        "error_samples": samples,
        "latencies_ms": latencies,
    }


async def read_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Open loop: `rate` reads a second on a fixed schedule for `seconds`. Latency
    counts from the scheduled time (a late send counts against the server, as a
    user's would), and the send lag is kept to show the generator kept up."""
    rate: float = spec["rate"]
    count = int(rate * spec["seconds"])
    headers = {"Authorization": f"Bearer {spec['token']}"}
    path = f"{API}/orders/{spec['order_id']}"
    statuses: Counter[str] = Counter()
    samples: dict[str, list[str]] = {}
    latencies: list[float] = []
    lags: list[float] = []
    gate = asyncio.Semaphore(READ_MAX_IN_FLIGHT)
    limits = httpx.Limits(max_connections=READ_MAX_IN_FLIGHT)
    async with httpx.AsyncClient(
        base_url=spec["base_url"], timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
    ) as client:
        loop = asyncio.get_running_loop()
        start = await _until(spec["start_at"])

        # Scheduling runs on the loop's clock, timing on perf_counter (uvloop's
        # loop.time() has 1 ms resolution): `offset` maps the one onto the other.
        offset = time.perf_counter() - loop.time()

        async def one(scheduled: float) -> None:
            async with gate:
                lags.append(round(1000 * (time.perf_counter() - offset - scheduled), 3))
                try:
                    answer = await client.get(path, headers=headers)
                    status = str(answer.status_code)
                    if answer.status_code != 200:
                        _record_error(samples, status, answer.text)
                except httpx.HTTPError as exc:
                    status = f"transport:{type(exc).__name__}"
                    _record_error(samples, status, repr(exc))
                statuses[status] += 1
                latencies.append(round(1000 * (time.perf_counter() - offset - scheduled), 3))

        tasks = []
        for n in range(count):
            scheduled = start + n / rate
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    return {
        "kind": "read",
        "statuses": dict(statuses),
        "error_samples": samples,
        "latencies_ms": latencies,
        "send_lag_ms": lags,
    }


def run_load(spec_path: Path) -> int:
    """`payments.py --load SPEC`: one load process; its result goes to spec["out"]."""
    spec = json.loads(spec_path.read_text())
    if spec["kind"] == "pay":
        lines = Path(spec["orders_file"]).read_text().splitlines()
        spec["orders"] = [json.loads(line) for line in lines]
    _event_loop_policy()
    loader = pay_load if spec["kind"] == "pay" else read_load
    result = asyncio.run(loader(spec))
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


# ------------------------------------------------------------------------ the stack


@dataclass
class Stack:
    """The two servers, their database, and who the seeding made."""

    base_url: str
    sandbox_url: str
    server: Process
    sandbox: Process
    database: str
    admin_url: str
    workdir: Path
    customer_tokens: list[str] = field(default_factory=list)
    reader_token: str = ""
    reader_order: str = ""
    product_id: str = ""
    orders: list[tuple[str, int]] = field(default_factory=list)  # (order id, customer)
    next_order: int = 0

    def orders_left(self) -> int:
        return len(self.orders) - self.next_order

    def set_latency(self, latency_ms: int) -> None:
        """The sandbox's latency fault on its API POSTs, or none."""
        with httpx.Client(base_url=self.sandbox_url, timeout=10.0) as control:
            if latency_ms:
                rule = {"fault": "latency", "method": "POST", "path": "/v1/*"}
                rules = [{**rule, "latency_ms": latency_ms}]
                expect(control.post("/_sandbox/faults", json={"rules": rules}), 200)
            else:
                expect(control.delete("/_sandbox/faults"), 200)

    def faults_fired(self) -> int:
        with httpx.Client(base_url=self.sandbox_url, timeout=10.0) as control:
            answer = control.get("/_sandbox/faults")
            expect(answer, 200)
            return sum(int(rule.get("fired", 0)) for rule in answer.json()["rules"])

    def app_pids(self) -> list[int]:
        return process_tree([self.server.pid])

    def sandbox_pids(self) -> list[int]:
        return process_tree([self.sandbox.pid])

    def check_alive(self) -> None:
        self.server.check_alive()
        self.sandbox.check_alive()


@contextlib.contextmanager
def running_stack(args: argparse.Namespace, workdir: Path) -> Iterator[Stack]:
    """A fresh database, the sandbox gateway and `orderdesk serve` paying through it;
    everything stopped and dropped afterwards, even on failure."""
    database = args.database
    recreate_database(args.admin_url, database)
    processes: list[Process] = []
    try:
        server_port, sandbox_port = free_port(), free_port()
        base_url = f"http://127.0.0.1:{server_port}"
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        secret = "whsec_" + secrets.token_hex(24)
        env = {
            **server_env(database_url(args.admin_url, database)),
            "ORDERDESK_PAYMENT_GATEWAY_URL": sandbox_url,
            "ORDERDESK_STRIPE_API_KEY": SANDBOX_KEY,
            "ORDERDESK_STRIPE_WEBHOOK_SECRETS": secret,
            # Production refuses a gateway other than Stripe unless told it is a test.
            "ORDERDESK_PAYMENT_SANDBOX_ALLOWED": "true",
        }
        if args.park_relay:
            env["ORDERDESK_RELAY_INTERVAL_SECONDS"] = str(PARKED_RELAY_SECONDS)
        admin_email, admin_password = "bench-admin@example.com", secrets.token_urlsafe(24)
        cli(env, workdir, "migrate", "upgrade")
        cli(env, workdir, "create-admin", "--email", admin_email, "--password", admin_password)
        sandbox_cmd = [str(ORDERDESK), "sandbox-gateway", "--host", "127.0.0.1"]
        sandbox_cmd += ["--port", str(sandbox_port), "--webhook-secret", secret]
        sandbox_cmd += ["--webhook-url", f"{base_url}{API}/payments/webhook"]
        sandbox = Process("sandbox", sandbox_cmd, env, workdir)
        processes.append(sandbox)
        serve_cmd = [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(server_port)]
        server = Process(
            f"orderdesk-w{args.workers}",
            [*serve_cmd, "--workers", str(args.workers)],
            env,
            workdir,
        )
        processes.append(server)
        wait_http_ready(sandbox, sandbox_url, "/_sandbox/health")
        wait_http_ready(server, base_url, "/health/ready")
        stack = Stack(base_url, sandbox_url, server, sandbox, database, args.admin_url, workdir)
        seed_people(stack, admin_email, admin_password, args.customers)
        yield stack
    finally:
        for process in reversed(processes):
            process.stop()
        drop_database(args.admin_url, database)


# ------------------------------------------------------------------------- seeding


def seed_people(stack: Stack, admin_email: str, admin_password: str, customers: int) -> None:
    """Through the public API: a product nobody can buy out, `customers` payers who
    register and sign in, and a reader with one order of its own (the read route's
    target, never paid, so the reads touch no row the pays lock)."""
    with httpx.Client(base_url=stack.base_url + API, timeout=30.0) as client:
        admin_token = sign_in(client, admin_email, admin_password)
        created = client.post(
            "/products",
            headers={"Authorization": f"Bearer {admin_token}"},
            json={
                "sku": "BENCH-PAY-1",
                "name": "Benchmark mug",
                "description": "Stock that a benchmark cannot exhaust.",
                "price": PRICE,
                "stock": STOCK,
            },
        )
        expect(created, 201)
        stack.product_id = created.json()["id"]
        tokens = []
        for n in range(customers + 1):
            email, password = f"bench-payer-{n}@example.com", secrets.token_urlsafe(24)
            registered = client.post(
                "/auth/register",
                json={"email": email, "password": password, "full_name": f"Bench Payer {n}"},
            )
            expect(registered, 201)
            tokens.append(sign_in(client, email, password))
        stack.reader_token, stack.customer_tokens = tokens[0], tokens[1:]
        placed = client.post(
            "/orders",
            json={"lines": [{"product_id": stack.product_id, "quantity": 1}]},
            headers={"Authorization": f"Bearer {stack.reader_token}", "Idempotency-Key": "read"},
        )
        expect(placed, 201)
        stack.reader_order = placed.json()["id"]
        read = client.get(
            f"/orders/{stack.reader_order}",
            headers={"Authorization": f"Bearer {stack.reader_token}"},
        )
        expect(read, 200)


def seed_orders(stack: Stack, count: int, deadline_seconds: float) -> float:
    """`count` more unpaid orders, one line each, spread over the payers, placed
    through `POST /orders` by SEED_CONCURRENCY clients; stops early at the deadline.
    Prints progress; returns the orders placed per second."""
    if count <= 0:
        return 0.0
    return asyncio.run(_seed_orders(stack, count, deadline_seconds))


async def _seed_orders(stack: Stack, count: int, deadline_seconds: float) -> float:
    body = json.dumps({"lines": [{"product_id": stack.product_id, "quantity": 1}]}).encode()
    started = time.monotonic()
    deadline = started + deadline_seconds
    placed: list[tuple[str, int]] = []
    step = max(1, count // 10)
    issued = 0
    print(f"seeding {count} orders: ", end="", flush=True)
    async with httpx.AsyncClient(base_url=stack.base_url + API, timeout=30.0) as client:

        async def lane() -> None:
            nonlocal issued
            while issued < count and time.monotonic() < deadline:
                n = issued
                issued += 1
                customer = (len(stack.orders) + n) % len(stack.customer_tokens)
                answer = await client.post(
                    "/orders",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {stack.customer_tokens[customer]}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                )
                expect(answer, 201)
                placed.append((answer.json()["id"], customer))
                if len(placed) % step == 0:
                    print(f"{len(placed)}", end=" ", flush=True)

        await asyncio.gather(*(lane() for _ in range(SEED_CONCURRENCY)))
    seconds = time.monotonic() - started
    stack.orders.extend(placed)
    rate = len(placed) / seconds if seconds else 0.0
    print(f"done in {seconds:.0f} s ({rate:.0f}/s)", flush=True)
    if len(placed) < count:
        print(f"(seeding stopped at its {deadline_seconds:.0f} s limit: {len(placed)} orders)")
    return rate


# -------------------------------------------------------------------------- bursts


@dataclass
class Scenario:
    """One scenario's bursts, summed (latencies kept whole, so the percentiles are
    over every request of every burst)."""

    name: str
    latency_ms: int | None  # the gateway's added latency; None: no pay load
    bursts: int = 0
    seconds: float = 0.0  # the measured windows
    pay_seconds: float = 0.0  # the same, shortened if the orders ran out
    pays_in_window: int = 0
    pay_statuses: Counter[str] = field(default_factory=Counter)
    pay_latencies: list[float] = field(default_factory=list)
    pay_error_samples: dict[str, list[str]] = field(default_factory=dict)
    orders_used: int = 0
    exhausted: int = 0  # bursts that ran out of orders
    gateway_posts_delayed: int = 0  # the latency fault's firings
    read_statuses: Counter[str] = field(default_factory=Counter)
    read_latencies: list[float] = field(default_factory=list)
    read_send_lag: list[float] = field(default_factory=list)
    read_error_samples: dict[str, list[str]] = field(default_factory=dict)
    app_cpu_seconds: float = 0.0  # server processes, burst start until idle again
    gateway_cpu_seconds: float = 0.0  # the sandbox process, likewise
    db_cpu_seconds: float = 0.0  # the database's backends, likewise
    load_cpu_seconds: float = 0.0  # both load processes, during the window
    other_cpu_seconds: float = 0.0  # everything else on the machine, during the window
    not_idle_after: int = 0  # bursts after which the servers were still busy at the limit
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def pays(self) -> int:
        return sum(self.pay_statuses.values())

    @property
    def pay_errors(self) -> int:
        return self.pays - self.pay_statuses.get("200", 0)

    @property
    def read_errors(self) -> int:
        return sum(self.read_statuses.values()) - self.read_statuses.get("200", 0)

    @property
    def pay_rps(self) -> float:
        return self.pays_in_window / self.pay_seconds if self.pay_seconds else 0.0

    def per_pay_ms(self, cpu_seconds: float) -> float:
        return 1000 * cpu_seconds / self.pays if self.pays else 0.0

    @property
    def other_cores(self) -> float:
        return self.other_cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def delayed_posts_per_pay(self) -> float:
        return self.gateway_posts_delayed / self.pays if self.pays else 0.0

    def summary(self) -> dict[str, Any]:
        out = {
            key: value
            for key, value in asdict(self).items()
            if key not in {"pay_latencies", "read_latencies", "read_send_lag"}
        }
        # asdict() would rebuild a Counter from its (key, count) pairs, counting them.
        out["pay_statuses"], out["read_statuses"] = (
            dict(self.pay_statuses),
            dict(self.read_statuses),
        )
        for name, values in (
            ("pay_ms", self.pay_latencies),
            ("read_ms", self.read_latencies),
            ("read_send_lag_ms", self.read_send_lag),
        ):
            out[name] = {
                "count": len(values),
                **{f"p{q:g}": percentile(values, q) for q in (50, 90, 99, 99.9)},
                "max": max(values, default=0.0),
            }
        out.update(
            pays=self.pays,
            pay_rps=round(self.pay_rps, 1),
            pay_errors=self.pay_errors,
            read_errors=self.read_errors,
            app_cpu_ms_per_pay=round(self.per_pay_ms(self.app_cpu_seconds), 3),
            gateway_cpu_ms_per_pay=round(self.per_pay_ms(self.gateway_cpu_seconds), 3),
            db_cpu_ms_per_pay=round(self.per_pay_ms(self.db_cpu_seconds), 3),
            other_cores=round(self.other_cores, 2),
            delayed_posts_per_pay=round(self.delayed_posts_per_pay, 3),
        )
        return out


@dataclass
class Settings:
    seconds: float  # per burst
    concurrency: int
    read_rate: float


def run_burst(stack: Stack, scenario: Scenario, settings: Settings) -> None:
    """One measured burst of `scenario`, added to it: the reads, and the pays if the
    scenario has them, from two processes started together; CPU accounting around
    them; then a wait until the servers are idle again (the webhooks the pays caused
    arrive and are applied after the answers)."""
    stack.check_alive()
    seconds = settings.seconds
    if not scenario.bursts:
        scenario.load_before = os.getloadavg()
    stack.set_latency(scenario.latency_ms or 0)
    start_at = time.time() + START_DELAY_SECONDS
    specs: dict[str, dict[str, Any]] = {
        "read": {
            "kind": "read",
            "base_url": stack.base_url,
            "start_at": start_at,
            "seconds": seconds,
            "rate": settings.read_rate,
            "token": stack.reader_token,
            "order_id": stack.reader_order,
        }
    }
    if scenario.latency_ms is not None:
        orders_file = stack.workdir / "orders.jsonl"
        orders_file.write_text(
            "".join(
                json.dumps([order, customer]) + "\n"
                for order, customer in stack.orders[stack.next_order :]
            )
        )
        specs["pay"] = {
            "kind": "pay",
            "base_url": stack.base_url,
            "start_at": start_at,
            "seconds": seconds,
            "concurrency": settings.concurrency,
            "tokens": stack.customer_tokens,
            "orders_file": str(orders_file),
        }
    loads: dict[str, subprocess.Popen[bytes]] = {}
    for kind, spec in specs.items():
        spec["out"] = str(stack.workdir / f"{kind}-result.json")
        Path(spec["out"]).unlink(missing_ok=True)
        spec_path = stack.workdir / f"{kind}-spec.json"
        spec_path.write_text(json.dumps(spec))
        with (stack.workdir / f"load-{kind}.log").open("ab") as log:
            loads[kind] = subprocess.Popen(  # noqa: S603 - this script, our venv's python
                [str(PYTHON), str(Path(__file__).resolve()), "--load", str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    time.sleep(max(0.0, start_at - time.time()))
    app_pids, gateway_pids = stack.app_pids(), stack.sandbox_pids()
    db_pids = asyncio.run(_backend_pids(stack.admin_url, stack.database))
    load_pids = [p.pid for p in loads.values()]
    app0, gw0, db0 = cpu_seconds(app_pids), cpu_seconds(gateway_pids), cpu_seconds(db_pids)
    load0, busy0 = cpu_seconds(load_pids), machine_busy_seconds()
    window_started = time.monotonic()
    time.sleep(seconds)
    busy = machine_busy_seconds() - busy0
    window = time.monotonic() - window_started
    app_during = cpu_delta(app0, cpu_seconds(app_pids))
    gw_during = cpu_delta(gw0, cpu_seconds(gateway_pids))
    db_during = cpu_delta(db0, cpu_seconds(db_pids))
    load_during = cpu_delta(load0, cpu_seconds(load_pids))
    results: dict[str, dict[str, Any]] = {}
    for kind, popen in loads.items():
        try:
            popen.wait(timeout=REQUEST_TIMEOUT_SECONDS + 60)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        out = Path(specs[kind]["out"])
        if popen.returncode != 0 or not out.exists():
            log_tail = (stack.workdir / f"load-{kind}.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"the {kind} load process failed ({popen.returncode}):\n{log_tail}")
        results[kind] = json.loads(out.read_text())
    if not wait_idle(stack):
        scenario.not_idle_after += 1
    db_pids_after = asyncio.run(_backend_pids(stack.admin_url, stack.database))

    s = scenario
    s.bursts += 1
    s.seconds += window
    s.app_cpu_seconds += cpu_delta(app0, cpu_seconds(app_pids))
    s.gateway_cpu_seconds += cpu_delta(gw0, cpu_seconds(gateway_pids))
    s.db_cpu_seconds += cpu_delta(db0, cpu_seconds(db_pids_after))
    s.load_cpu_seconds += load_during
    s.other_cpu_seconds += max(busy - app_during - gw_during - db_during - load_during, 0.0)
    read = results["read"]
    s.read_statuses.update(read["statuses"])
    s.read_latencies += read["latencies_ms"]
    s.read_send_lag += read["send_lag_ms"]
    _merge_samples(s.read_error_samples, read["error_samples"])
    pay = results.get("pay")
    if pay is not None:
        s.pay_seconds += pay["window_seconds"]
        s.pays_in_window += pay["in_window"]
        s.pay_statuses.update(pay["statuses"])
        s.pay_latencies += pay["latencies_ms"]
        _merge_samples(s.pay_error_samples, pay["error_samples"])
        s.orders_used += pay["taken"]
        s.exhausted += int(pay["exhausted"])
        stack.next_order += pay["taken"]
        if s.latency_ms:
            s.gateway_posts_delayed += stack.faults_fired()


def _merge_samples(into: dict[str, list[str]], found: dict[str, list[str]]) -> None:
    for status, texts in found.items():
        kept = into.setdefault(status, [])
        kept.extend(texts[: max(0, 5 - len(kept))])


def wait_idle(stack: Stack) -> bool:
    """Until the server and the sandbox use (almost) no CPU: the outbox has applied
    the burst's webhooks and the sandbox has delivered them. False at the limit."""
    deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS
    pids = stack.app_pids() + stack.sandbox_pids()
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        time.sleep(IDLE_WINDOW_SECONDS)
        if cpu_delta(before, cpu_seconds(pids)) < IDLE_CPU_FRACTION * IDLE_WINDOW_SECONDS:
            return True
    return False


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


# -------------------------------------------------------------------------- checks


def check_outcome(stack: Stack, answered_200: int) -> dict[str, Any]:
    """What the pays left behind, once everything is idle: orders paid (against the
    200 answers), charges in the sandbox's ledger, orders charged more than once,
    payment attempts by status, and webhook deliveries that did not get a 2xx."""
    db = asyncio.run(_database_counts(stack.admin_url, stack.database))
    with httpx.Client(base_url=stack.sandbox_url, timeout=60.0) as control:
        ledger = control.get("/_sandbox/ledger")
        expect(ledger, 200)
        deliveries = control.get("/_sandbox/deliveries")
        expect(deliveries, 200)
    charges = ledger.json()["charges"]
    per_order = Counter(c["metadata"].get("orderdesk_order_id") for c in charges)
    outcomes: Counter[str] = Counter()
    for attempt in deliveries.json()["deliveries"]:
        outcome = str(attempt.get("outcome"))
        outcomes["2xx" if outcome.startswith("2") else outcome] += 1
    return {
        "pay_answers_200": answered_200,
        "orders_paid": db["orders_paid"],
        "orders_by_status": db["orders_by_status"],
        "attempts_by_status": db["attempts_by_status"],
        "charges": len(charges),
        "orders_charged_more_than_once": sum(1 for n in per_order.values() if n > 1),
        "webhook_deliveries": dict(outcomes),
        "outbox_open": db["outbox_open"],
    }


async def _database_counts(admin_url: str, database: str) -> dict[str, Any]:
    connection = await asyncpg.connect(db_dsn(admin_url, database))
    try:
        orders = await connection.fetch("SELECT status, count(*) AS n FROM orders GROUP BY 1")
        attempts = await connection.fetch(
            "SELECT status, count(*) AS n FROM payment_attempts GROUP BY 1"
        )
        outbox_open = await connection.fetchval(
            "SELECT count(*) FROM outbox_events WHERE status IN ('pending', 'running')"
        )
    finally:
        await connection.close()
    by_status = {row["status"]: int(row["n"]) for row in orders}
    return {
        "orders_by_status": by_status,
        "orders_paid": by_status.get("paid", 0),
        "attempts_by_status": {row["status"]: int(row["n"]) for row in attempts},
        "outbox_open": int(outbox_open),
    }


# -------------------------------------------------------------------------- report

HEADER = (
    f"{'scenario':<22} {'pay/s':>6} {'pay p50':>7} {'pay p99':>7} {'pay err':>7}"
    f" {'read p50':>8} {'read p99':>8} {'read max':>8} {'rd err':>6} {'app ms/pay':>10}"
    f" {'gw ms/pay':>9} {'db ms/pay':>9} {'other':>5} {'load1':>5}"
)


def _row(s: Scenario) -> str:
    paying = s.latency_ms is not None
    pay = (
        f"{s.pay_rps:>6.1f} {percentile(s.pay_latencies, 50):>7.1f}"
        f" {percentile(s.pay_latencies, 99):>7.1f} {s.pay_errors:>7}"
        if paying
        else f"{'-':>6} {'-':>7} {'-':>7} {'-':>7}"
    )
    cpu = (
        f"{s.per_pay_ms(s.app_cpu_seconds):>10.2f} {s.per_pay_ms(s.gateway_cpu_seconds):>9.2f}"
        f" {s.per_pay_ms(s.db_cpu_seconds):>9.2f}"
        if paying
        else f"{'-':>10} {'-':>9} {'-':>9}"
    )
    return (
        f"{s.name:<22} {pay} {percentile(s.read_latencies, 50):>8.1f}"
        f" {percentile(s.read_latencies, 99):>8.1f} {max(s.read_latencies, default=0.0):>8.1f}"
        f" {s.read_errors:>6} {cpu} {s.other_cores:>5.2f} {s.load_before[0]:>5.2f}"
    )


def ratios(idle: Scenario, fast: Scenario, slow: Scenario, concurrency: int) -> dict[str, float]:
    """Against baselines of the same run: the read's p99 idle, the pay at +0 ms, and
    the bound a closed loop of `concurrency` clients can reach when every pay waits
    (delayed POSTs per pay x the added latency) at the gateway."""
    found: dict[str, float] = {}
    idle_p99 = percentile(idle.read_latencies, 99)
    fast_p99 = percentile(fast.read_latencies, 99)
    slow_p99 = percentile(slow.read_latencies, 99)
    if idle_p99:
        found["read p99: pay +0 ms / idle"] = fast_p99 / idle_p99
        found[f"read p99: pay +{slow.latency_ms} ms / idle"] = slow_p99 / idle_p99
    if fast_p99:
        found[f"read p99: pay +{slow.latency_ms} ms / pay +0 ms"] = slow_p99 / fast_p99
    if fast.pay_rps:
        found[f"pay req/s: +{slow.latency_ms} ms / +0 ms"] = slow.pay_rps / fast.pay_rps
    added = slow.delayed_posts_per_pay * (slow.latency_ms or 0) / 1000
    if added:
        bound = concurrency / added
        found[f"pay bound at +{slow.latency_ms} ms (concurrency / added s per pay), req/s"] = bound
        found[f"pay req/s at +{slow.latency_ms} ms / that bound"] = slow.pay_rps / bound
        p50_gain = percentile(slow.pay_latencies, 50) - percentile(fast.pay_latencies, 50)
        found["pay p50 added (ms) / gateway time added per pay (ms)"] = p50_gain / (1000 * added)
    return found


def report(
    started_at: datetime,
    info: dict[str, Any],
    args: argparse.Namespace,
    scenarios: list[Scenario],
    warm: Scenario | None,
    outcome: dict[str, Any],
    seeding: dict[str, Any],
) -> None:
    idle, fast, slow = scenarios
    found = ratios(idle, fast, slow, args.concurrency)
    print()
    print(HEADER)
    for s in scenarios:
        print(_row(s))
    print()
    for name, value in found.items():
        print(f"{name:<66} {value:8.3f}")
    print(
        f"gateway POSTs delayed per pay at +{slow.latency_ms} ms: "
        f"{slow.delayed_posts_per_pay:.2f}; read send lag p99 (the generator's own delay): "
        + ", ".join(f"{s.name} {percentile(s.read_send_lag, 99):.1f} ms" for s in scenarios)
    )
    if outcome:
        print(
            f"after the run: {outcome['pay_answers_200']} pays answered 200,"
            f" {outcome['orders_paid']} orders paid, {outcome['charges']} charges,"
            f" {outcome['orders_charged_more_than_once']} orders charged more than once;"
            f" attempts {outcome['attempts_by_status']}; webhook deliveries"
            f" {outcome['webhook_deliveries']}; outbox events still open {outcome['outbox_open']}"
        )
    for s in scenarios:
        if s.pay_errors or s.read_errors:
            answers = f"pay answers {dict(s.pay_statuses)}, reads {dict(s.read_statuses)}"
            print(f"WARNING: {s.name}: {answers}")
            for status, texts in {**s.pay_error_samples, **s.read_error_samples}.items():
                for text in texts:
                    print(f"    {status}: {text}")
        if s.exhausted:
            print(
                f"WARNING: {s.name}: {s.exhausted} burst(s) ran out of orders (rate over less time)"
            )
        if s.not_idle_after:
            print(
                f"WARNING: {s.name}: the servers were still busy {IDLE_TIMEOUT_SECONDS:.0f} s after"
                f" {s.not_idle_after} burst(s): the next burst shared the machine with that work"
            )
    write_results(
        "payments",
        started_at,
        info,
        {
            "settings": {
                "duration_s": args.duration,
                "rounds": args.rounds,
                "warmup_s": args.warmup,
                "concurrency": args.concurrency,
                "read_rate": args.read_rate,
                "latency_ms": args.latency_ms,
                "workers": args.workers,
                "customers": args.customers,
                "park_relay": args.park_relay,
            },
            "seeding": seeding,
            "scenarios": [s.summary() for s in scenarios],
            "warmup": warm.summary() if warm else None,
            "ratios": found,
            "outcome": outcome,
        },
    )


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="orderdesk payment benchmark")
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)  # a load process
    parser.add_argument(
        "--duration", type=int, default=30, help="seconds measured per scenario (all bursts)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="bursts per scenario, in rotation")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of pays thrown away")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop pay clients")
    parser.add_argument("--read-rate", type=float, default=50.0, help="reads per second")
    parser.add_argument("--latency-ms", type=int, default=200, help="gateway latency added")
    parser.add_argument("--workers", type=int, default=1, help="orderdesk serve --workers")
    parser.add_argument("--customers", type=int, default=8, help="payers the orders spread over")
    parser.add_argument("--max-orders", type=int, default=20_000, help="seeding's upper bound")
    parser.add_argument(
        "--park-relay",
        action="store_true",
        help="park orderdesk's outbox relay (webhooks recorded, not applied, during the run)",
    )
    add_database_args(parser, "orderdesk_bench_pay")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the processes' logs")
    args = parser.parse_args(argv)
    if args.load is None:
        for name in ("duration", "rounds", "concurrency", "workers", "customers", "latency_ms"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be at least 1")
        if args.read_rate <= 0:
            parser.error("--read-rate must be positive")
    return args


def orders_needed(pay_rate: float, args: argparse.Namespace) -> int:
    """Orders for the measured bursts: the +0 ms rate for its bursts, and for the
    slow ones that rate or the bound of the closed loop (two delayed POSTs per pay:
    create, then confirm), whichever is lower; with ORDER_MARGIN to spare."""
    bound = args.concurrency / (2 * args.latency_ms / 1000)
    needed: int = math.ceil(ORDER_MARGIN * args.duration * (pay_rate + min(pay_rate, bound)))
    return needed


def expected_seconds(args: argparse.Namespace, pay_rate: float, seeded: bool) -> float:
    per_burst = args.duration / args.rounds + START_DELAY_SECONDS + 1.0
    total = 3 * args.rounds * per_burst + 2 * args.duration * DRAIN_PER_PAY_SECOND
    if not seeded:
        warm_orders = warmup_orders(args)
        seed = min(args.max_orders, warm_orders + orders_needed(pay_rate, args))
        total += SETUP_SECONDS + seed / SEED_ORDERS_PER_SECOND
        total += args.warmup * (1 + DRAIN_PER_PAY_SECOND) + START_DELAY_SECONDS
    return float(total)


def warmup_orders(args: argparse.Namespace) -> int:
    """Enough for the warm-up at ASSUMED_PAY_RATE, with ORDER_MARGIN to spare."""
    cap, lanes, seconds = int(args.max_orders), int(args.concurrency), float(args.warmup)
    return min(cap, math.ceil(ORDER_MARGIN * ASSUMED_PAY_RATE * seconds) + 4 * lanes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load is not None:
        return run_load(args.load)
    if not ORDERDESK.exists():
        print(f"{ORDERDESK} is missing: install the project into the venv", file=sys.stderr)
        return 2
    workdir, started_at, info = begin(
        "orderdesk payments bench", "orderdesk-paybench-", commit=True
    )
    print(
        f"expected duration: about {expected_seconds(args, ASSUMED_PAY_RATE, False) / 60:.1f} min"
        f" (assuming {ASSUMED_PAY_RATE:.0f} pays/s until the warm-up measures it)",
        flush=True,
    )
    scenarios = [
        Scenario("idle (reads only)", None),
        Scenario("pay, gateway +0 ms", 0),
        Scenario(f"pay, gateway +{args.latency_ms} ms", args.latency_ms),
    ]
    settings = Settings(args.duration / args.rounds, args.concurrency, args.read_rate)
    warm: Scenario | None = None
    outcome: dict[str, Any] = {}
    seeding: dict[str, Any] = {}
    try:
        with running_stack(args, workdir) as stack:
            seeding["warmup_orders_per_second"] = seed_orders(
                stack, warmup_orders(args), SEED_TIMEOUT_SECONDS
            )
            warm = Scenario("warm-up", 0)
            run_burst(stack, warm, Settings(args.warmup, args.concurrency, args.read_rate))
            rate = warm.pay_rps or ASSUMED_PAY_RATE
            print(
                f"warm-up: {warm.pays} pays, {warm.pay_rps:.0f}/s, answers"
                f" {dict(warm.pay_statuses)}",
                flush=True,
            )
            wanted = min(args.max_orders, len(stack.orders) + orders_needed(rate, args))
            more = wanted - len(stack.orders) + stack.next_order
            more = min(more, args.max_orders - len(stack.orders))
            seeding["orders_per_second"] = seed_orders(stack, more, SEED_TIMEOUT_SECONDS)
            seeding["orders"] = len(stack.orders)
            print(
                f"measuring: {len(scenarios)} scenarios x {args.rounds} bursts of"
                f" {settings.seconds:g} s, about {expected_seconds(args, rate, True) / 60:.1f}"
                " min more",
                flush=True,
            )
            for round_number in range(args.rounds):
                order = scenarios if round_number % 2 == 0 else scenarios[::-1]
                for scenario in order:
                    run_burst(stack, scenario, settings)
                    print(
                        f"  round {round_number + 1}/{args.rounds} {scenario.name:<22}"
                        f" done ({stack.orders_left()} orders left)",
                        flush=True,
                    )
            answered = sum(s.pay_statuses.get("200", 0) for s in [warm, *scenarios])
            outcome = check_outcome(stack, answered)
            seeding["orders_left"] = stack.orders_left()
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report(started_at, info, args, scenarios, warm, outcome, seeding)
    return 0


if __name__ == "__main__":
    sys.exit(main())

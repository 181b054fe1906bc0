"""One background-work scenario run end to end, and what it produced (`Run`); the
checks every scenario shares; the databases and brokers scenarios run on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

from tests.e2e.support.mail import Tally, wait_for_mail
from tests.e2e.support.outbox import outbox_counts, unfinished_events, wait_for_outbox_to_settle
from tests.e2e.support.processes import Deployment, Killer, deployment, jobs_env
from tests.e2e.support.shop import Placed, create_admin, open_shop, place_orders
from tests.servers import SmtpServer, run_cli, server_env, smtp_server
from tests.services import port_open, unavailable

REDIS_BROKER = "redis://127.0.0.1:6379/13"
RABBITMQ_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
MAIL_TIMEOUT = 90.0  # from the last order placed to the last e-mail
SETTLE_SECONDS = 2.0  # after the last expected e-mail, for late duplicates to show
DEFAULT_LEASE_SECONDS = 60  # an event whose runner failed is taken again after this
CUSTOMERS = 4
PARALLEL_REQUESTS = 4
ORDERS = 200
RABBITMQ_ORDERS = 50
CRASH_KILLS = 20
CRASH_LEASE_SECONDS = 5
SERVE_KILLS = 3


class Run:
    """What one scenario produced."""

    def __init__(
        self,
        name: str,
        placed: Placed,
        tally: Tally,
        outbox: dict[str, int],
        running: Deployment,
        *,
        kills: int = 0,
        kills_after_ready: int = 0,
    ) -> None:
        self.name = name
        self.placed = placed
        self.orders = placed.orders
        self.tally = tally
        self.outbox = outbox
        self.serve_log = running.serve.log_since_start()
        self.worker_log = running.worker.log_since_start() if running.worker else ""
        self.logs = running.logs()
        self.unfinished: list[dict[str, object]] = []
        self.timings: dict[str, float] = {}
        self.events_this_run = 0
        self.kills = kills
        self.kills_after_ready = kills_after_ready
        self.while_broker_down: Placed | None = None

    def report(self) -> str:
        return (
            f"[{self.name}] orders={len(self.orders)} refused={len(self.placed.refused)} "
            f"kills={self.kills} (after ready: {self.kills_after_ready}) "
            f"events this run={self.events_this_run} (outbox now: {self.outbox}) "
            f"order_placed e-mails={self.tally.raw} "
            f"distinct Message-IDs={len(self.tally.by_message_id)} "
            f"duplicate deliveries={self.tally.duplicates} lost={len(self.tally.lost)} "
            f"error log lines={self.error_lines()} unfinished events={self.unfinished} "
            f"seconds: { {k: round(v, 1) for k, v in self.timings.items()} }"
        )

    def error_lines(self) -> int:
        logs = self.serve_log + self.worker_log
        return sum(
            1
            for line in logs.splitlines()
            if '"level": "error"' in line or line.startswith("Traceback")
        )


def total_events(database_url: str) -> int:
    return sum(outbox_counts(database_url).values())


def finish(
    name: str,
    database_url: str,
    smtp: SmtpServer,
    placed: Placed,
    running: Deployment,
    *,
    killer: Killer | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    events_before: int = 0,
) -> Run:
    """Wait (bounded) for every order's e-mail and for the outbox to settle: an event
    whose runner died or failed to record its outcome waits out its lease."""
    waiting_since = time.monotonic()
    wait_for_mail(smtp.inbox, placed.orders, timeout=MAIL_TIMEOUT)
    mail_seconds = time.monotonic() - waiting_since
    time.sleep(SETTLE_SECONDS)
    outbox = wait_for_outbox_to_settle(database_url, timeout=lease_seconds + 30)
    run = Run(
        name,
        placed,
        Tally.of(smtp.inbox.messages("order_placed"), placed.orders),
        outbox,
        running,
        kills=killer.done if killer else 0,
        kills_after_ready=killer.after_ready if killer else 0,
    )
    run.timings = {"placing": placed.seconds, "last e-mails": mail_seconds}
    run.events_this_run = sum(outbox.values()) - events_before
    if set(outbox) != {"done"}:
        run.unfinished = unfinished_events(database_url)
    print(run.report())
    return run


def assert_every_order_placed(run: Run, count: int) -> None:
    assert run.placed.refused == []
    assert len(run.orders) == count


def assert_one_message_id_per_order(run: Run) -> None:
    lost = run.tally.lost
    assert not lost, f"{len(lost)} orders got no e-mail; {run.report()}\n{run.logs[-3000:]}"
    several = {o: ids for o, ids in run.tally.message_ids_per_order().items() if len(ids) > 1}
    assert not several, f"orders mailed under more than one Message-ID: {several}"


def assert_exactly_one_email_per_order(run: Run) -> None:
    assert_one_message_id_per_order(run)
    assert run.tally.raw == len(run.orders), run.report()
    assert set(run.tally.by_message_id.values()) == {1}, run.report()


# --- shared set-up ------------------------------------------------------------------------


def scenario_dir(workdir: Path, name: str) -> Path:
    path = workdir / name
    path.mkdir()
    return path


def sqlite_database(workdir: Path) -> tuple[str, str]:
    """A fresh migrated SQLite file with an admin: (url, admin address)."""
    url = f"sqlite+aiosqlite:///{workdir / 'orderdesk.db'}"
    env = server_env(url)
    migrated = run_cli(env, workdir, "migrate", "upgrade")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return url, create_admin(env, workdir)


@contextmanager
def redis_broker_db() -> Iterator[str]:
    """The shared Redis's database 13 (and only that), empty before and after."""
    client = redis.Redis.from_url(REDIS_BROKER)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        client.close()
        unavailable("Redis", exc)
    try:
        yield REDIS_BROKER
    finally:
        client.flushdb()
        client.close()


def rabbitmq_broker() -> str:
    if not port_open("127.0.0.1", 5672):
        unavailable("RabbitMQ", "nothing listens on 127.0.0.1:5672")
    return RABBITMQ_BROKER


def orders_flow(
    name: str,
    database_url: str,
    admin: str,
    workdir: Path,
    *,
    count: int,
    broker_url: str | None,
) -> Run:
    """Place `count` orders against serve (+ a worker when there is a broker)."""
    events_before = total_events(database_url)
    with smtp_server() as smtp:
        env = jobs_env(database_url, broker_url=broker_url, smtp_url=smtp.url)
        with deployment(env, workdir, with_worker=broker_url is not None) as running:
            shop = open_shop(running.base_url, admin, customers=CUSTOMERS)
            with httpx.Client(base_url=running.base_url, timeout=30.0) as http:
                placed = place_orders(
                    http, shop.customers, shop.product_id, count, parallel=PARALLEL_REQUESTS
                )
            return finish(name, database_url, smtp, placed, running, events_before=events_before)

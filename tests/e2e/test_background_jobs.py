"""Background jobs end to end, with real processes on loopback: `orderdesk serve`,
`orderdesk worker` (Celery on Redis or RabbitMQ), PostgreSQL or a SQLite file, and a
real SMTP server in this process. Orders placed over HTTP must each produce exactly
one "order placed" e-mail: with a broker, without one, with the worker killed again
and again mid-flight, with the broker down while orders come in, and with the API
process itself killed.

Each scenario runs once (a module-scoped fixture) and small tests check what it
produced. Every wait is bounded, and every process is stopped on the way out.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import DatabaseFactory
from tests.e2e.conftest import free_port, run_cli, server_env
from tests.e2e.jobs_support import (
    Deployment,
    Killer,
    Placed,
    SmtpServer,
    Tally,
    create_admin,
    deployment,
    jobs_env,
    open_shop,
    outbox_counts,
    place_orders,
    private_redis,
    smtp_server,
    unfinished_events,
    wait_for_mail,
    wait_for_outbox_to_settle,
    wait_for_port,
)
from tests.services import port_open, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

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


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("background-jobs")


def scenario_dir(workdir: Path, name: str) -> Path:
    path = workdir / name
    path.mkdir()
    return path


@pytest.fixture(scope="module")
async def postgres_url(database_factory: DatabaseFactory) -> str:
    """One PostgreSQL database for the module's broker scenarios."""
    return await database_factory.create("postgresql")


@pytest.fixture(scope="module")
def postgres_admin(postgres_url: str, workdir: Path) -> str:
    env = server_env(postgres_url)
    migrated = run_cli(env, workdir, "migrate", "upgrade")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return create_admin(env, workdir)


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


# --- (1) Redis broker ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_run(postgres_url: str, postgres_admin: str, workdir: Path) -> Run:
    with redis_broker_db() as broker:
        return orders_flow(
            "redis",
            postgres_url,
            postgres_admin,
            scenario_dir(workdir, "redis"),
            count=ORDERS,
            broker_url=broker,
        )


def test_with_redis_every_order_is_placed(redis_run: Run) -> None:
    assert_every_order_placed(redis_run, ORDERS)


def test_with_redis_every_order_gets_exactly_one_email(redis_run: Run) -> None:
    assert_exactly_one_email_per_order(redis_run)


def test_with_redis_each_email_goes_to_the_customer_who_ordered(redis_run: Run) -> None:
    assert redis_run.tally.misaddressed() == []
    assert redis_run.tally.wrong_subjects() == []


def test_with_redis_every_outbox_event_ends_done(redis_run: Run) -> None:
    assert set(redis_run.outbox) == {"done"}, redis_run.outbox


def test_with_a_broker_handlers_run_only_in_the_worker(redis_run: Run) -> None:
    assert '"event_done"' in redis_run.worker_log
    assert '"event_done"' not in redis_run.serve_log


# --- (2) RabbitMQ broker ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rabbitmq_run(postgres_url: str, postgres_admin: str, workdir: Path) -> Run:
    broker = rabbitmq_broker()
    return orders_flow(
        "rabbitmq",
        postgres_url,
        postgres_admin,
        scenario_dir(workdir, "rabbitmq"),
        count=RABBITMQ_ORDERS,
        broker_url=broker,
    )


def test_with_rabbitmq_every_order_gets_exactly_one_email(rabbitmq_run: Run) -> None:
    assert_every_order_placed(rabbitmq_run, RABBITMQ_ORDERS)
    assert_exactly_one_email_per_order(rabbitmq_run)


def test_with_rabbitmq_every_outbox_event_ends_done(rabbitmq_run: Run) -> None:
    assert set(rabbitmq_run.outbox) == {"done"}, rabbitmq_run.outbox


# --- (3) the worker killed again and again --------------------------------------------------


@pytest.fixture(scope="module")
def worker_crash_run(postgres_url: str, postgres_admin: str, workdir: Path) -> Run:
    seed = random.randrange(2**32)
    print(f"worker crash test: random seed {seed}")
    events_before = total_events(postgres_url)
    with redis_broker_db() as broker, smtp_server() as smtp:
        env = jobs_env(
            postgres_url,
            broker_url=broker,
            smtp_url=smtp.url,
            job_lease_seconds=CRASH_LEASE_SECONDS,
        )
        directory = scenario_dir(workdir, "worker-crash")
        with deployment(env, directory, with_worker=True) as running:
            shop = open_shop(running.base_url, postgres_admin, customers=CUSTOMERS)
            worker = running.worker
            assert worker is not None
            # Kill moments spread over the worker's whole life: while it boots (its
            # relay may hold leases it never published), and while it runs handlers.
            killer = Killer(
                kill=worker.kill,
                restart=lambda: running.start_worker(wait=False),
                kills=CRASH_KILLS,
                gaps=(0.3, 3.5),
                ready_gaps=(0.1, 1.5),
                ready_every=3,
                seed=seed,
                deadline=time.monotonic() + 150,
                was_ready=lambda: " ready." in worker.log_since_start(),
            )
            killer.start()
            try:
                with httpx.Client(base_url=running.base_url, timeout=30.0) as http:
                    placed = place_orders(http, shop.customers, shop.product_id, ORDERS, pause=0.2)
                killer.join(timeout=160)  # the orders' e-mails keep flowing meanwhile
            finally:
                killer.stop()
            assert killer.error is None, repr(killer.error)
            assert killer.done >= CRASH_KILLS, f"only {killer.done} kills happened"
            return finish(
                "worker crash",
                postgres_url,
                smtp,
                placed,
                running,
                killer=killer,
                lease_seconds=CRASH_LEASE_SECONDS,
                events_before=events_before,
            )


def test_killed_workers_lose_no_order_email(worker_crash_run: Run) -> None:
    assert_every_order_placed(worker_crash_run, ORDERS)
    assert not worker_crash_run.tally.lost, worker_crash_run.report()


def test_killed_workers_mail_each_order_under_one_message_id(worker_crash_run: Run) -> None:
    print(worker_crash_run.report())
    assert_one_message_id_per_order(worker_crash_run)


def test_after_killed_workers_every_outbox_event_ends_done(worker_crash_run: Run) -> None:
    assert set(worker_crash_run.outbox) == {"done"}, worker_crash_run.report()


# --- (4) the broker down while orders come in ---------------------------------------------


@pytest.fixture(scope="module")
def broker_down_run(postgres_url: str, postgres_admin: str, workdir: Path) -> Run:
    if shutil.which("redis-server") is None:
        unavailable("Redis", "redis-server is not installed")
    directory = scenario_dir(workdir, "broker-down")
    port = free_port()
    broker = private_redis(directory, port)
    try:
        broker.start()
        wait_for_port(port)
        events_before = total_events(postgres_url)
        with smtp_server() as smtp:
            env = jobs_env(
                postgres_url,
                broker_url=f"redis://127.0.0.1:{port}/0",
                smtp_url=smtp.url,
                job_lease_seconds=10,
            )
            with deployment(env, directory, with_worker=True) as running:
                shop = open_shop(running.base_url, postgres_admin, customers=CUSTOMERS)
                with httpx.Client(base_url=running.base_url, timeout=30.0) as http:
                    before = place_orders(http, shop.customers, shop.product_id, 10)
                    assert not wait_for_mail(smtp.inbox, before.orders, timeout=60).lost
                    broker.stop()
                    during = place_orders(http, shop.customers, shop.product_id, 40, pause=0.05)
                    time.sleep(2)  # the relays meet the missing broker for a while
                    broker.start()
                    wait_for_port(port)
                placed = Placed(
                    orders={**before.orders, **during.orders},
                    refused=before.refused + during.refused,
                    seconds=before.seconds + during.seconds,
                )
                run = finish(
                    "broker down",
                    postgres_url,
                    smtp,
                    placed,
                    running,
                    lease_seconds=10,
                    events_before=events_before,
                )
                run.while_broker_down = during
                return run
    finally:
        broker.stop()


def test_orders_are_accepted_while_the_broker_is_down(broker_down_run: Run) -> None:
    during = broker_down_run.while_broker_down
    assert during is not None
    assert during.refused == []
    assert len(during.orders) == 40


def test_the_backlog_is_mailed_once_the_broker_is_back(broker_down_run: Run) -> None:
    assert len(broker_down_run.orders) == 50
    assert_one_message_id_per_order(broker_down_run)


def test_after_the_broker_outage_every_outbox_event_ends_done(broker_down_run: Run) -> None:
    assert set(broker_down_run.outbox) == {"done"}, broker_down_run.report()


# --- (5) no broker: the in-process runner on SQLite ---------------------------------------


@pytest.fixture(scope="module")
def in_process_run(workdir: Path) -> Run:
    directory = scenario_dir(workdir, "in-process")
    url, admin = sqlite_database(directory)
    return orders_flow("in process", url, admin, directory, count=ORDERS, broker_url=None)


def test_in_process_every_order_gets_exactly_one_email(in_process_run: Run) -> None:
    assert_every_order_placed(in_process_run, ORDERS)
    assert_exactly_one_email_per_order(in_process_run)
    assert in_process_run.tally.misaddressed() == []


def test_in_process_every_outbox_event_ends_done(in_process_run: Run) -> None:
    assert set(in_process_run.outbox) == {"done"}, in_process_run.outbox


def test_without_a_broker_serve_runs_the_handlers(in_process_run: Run) -> None:
    assert '"event_done"' in in_process_run.serve_log


@pytest.fixture(scope="module")
def serve_crash_run(workdir: Path) -> Run:
    directory = scenario_dir(workdir, "serve-crash")
    url, admin = sqlite_database(directory)
    seed = random.randrange(2**32)
    print(f"serve crash test: random seed {seed}")
    events_before = total_events(url)
    with smtp_server() as smtp:
        env = jobs_env(url, smtp_url=smtp.url, job_lease_seconds=CRASH_LEASE_SECONDS)
        with deployment(env, directory, with_worker=False) as running:
            shop = open_shop(running.base_url, admin, customers=CUSTOMERS)
            killer = Killer(
                kill=running.serve.kill,
                restart=running.start_serve,
                kills=SERVE_KILLS,
                gaps=(3.0, 7.0),
                seed=seed,
                deadline=time.monotonic() + 60,
                was_ready=lambda: '"event_done"' in running.serve.log_since_start(),
            )
            killer.start()
            try:
                with httpx.Client(base_url=running.base_url, timeout=30.0) as http:
                    placed = place_orders(
                        http, shop.customers, shop.product_id, ORDERS, pause=0.05, retry_for=45
                    )
                killer.join(timeout=70)
            finally:
                killer.stop()
            assert killer.error is None, repr(killer.error)
            assert killer.done == SERVE_KILLS, f"only {killer.done} kills happened"
            running.wait_until_serving()
            return finish(
                "serve crash",
                url,
                smtp,
                placed,
                running,
                killer=killer,
                lease_seconds=CRASH_LEASE_SECONDS,
                events_before=events_before,
            )


def test_a_killed_in_process_server_loses_no_order_email(serve_crash_run: Run) -> None:
    assert_every_order_placed(serve_crash_run, ORDERS)
    assert not serve_crash_run.tally.lost, serve_crash_run.report()


def test_a_killed_in_process_server_mails_each_order_under_one_message_id(
    serve_crash_run: Run,
) -> None:
    print(serve_crash_run.report())
    assert_one_message_id_per_order(serve_crash_run)


def test_after_a_killed_in_process_server_every_outbox_event_ends_done(
    serve_crash_run: Run,
) -> None:
    assert set(serve_crash_run.outbox) == {"done"}, serve_crash_run.report()

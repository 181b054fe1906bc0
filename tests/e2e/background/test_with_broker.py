"""Background work end to end with a broker, real processes on loopback:
`orderdesk serve`, `orderdesk worker` (Celery on Redis or RabbitMQ), PostgreSQL, and a
real SMTP server in this process. Orders placed over HTTP must each produce exactly
one "order placed" e-mail: on either broker, with the worker killed again and again
mid-flight, and with the broker down while orders come in.

Each scenario runs once (a module-scoped fixture) and small tests check what it
produced. Every wait is bounded, and every process is stopped on the way out.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.support.mail import wait_for_mail
from tests.e2e.support.processes import Killer, deployment, jobs_env, private_redis, wait_for_port
from tests.e2e.support.scenarios import (
    CRASH_KILLS,
    CRASH_LEASE_SECONDS,
    CUSTOMERS,
    ORDERS,
    RABBITMQ_ORDERS,
    Run,
    assert_every_order_placed,
    assert_exactly_one_email_per_order,
    assert_one_message_id_per_order,
    finish,
    orders_flow,
    rabbitmq_broker,
    redis_broker_db,
    scenario_dir,
    total_events,
)
from tests.e2e.support.shop import Placed, open_shop, place_orders
from tests.servers import free_port, smtp_server
from tests.services import unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


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
            event_lease_seconds=CRASH_LEASE_SECONDS,
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
                event_lease_seconds=10,
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

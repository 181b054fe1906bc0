"""Background work end to end without a broker: `orderdesk serve` runs the relay
and the handlers itself on a SQLite file. Every order gets exactly one e-mail, also
when the server process is killed again and again.

Each scenario runs once (a module-scoped fixture) and small tests check what it
produced. Every wait is bounded, and every process is stopped on the way out.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.support.processes import Killer, deployment, jobs_env
from tests.e2e.support.scenarios import (
    CRASH_LEASE_SECONDS,
    CUSTOMERS,
    ORDERS,
    SERVE_KILLS,
    Run,
    assert_every_order_placed,
    assert_exactly_one_email_per_order,
    assert_one_message_id_per_order,
    finish,
    orders_flow,
    scenario_dir,
    sqlite_database,
    total_events,
)
from tests.e2e.support.shop import open_shop, place_orders
from tests.servers import smtp_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


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
        env = jobs_env(url, smtp_url=smtp.url, event_lease_seconds=CRASH_LEASE_SECONDS)
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

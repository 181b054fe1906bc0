"""Reads outside the unit of work: GETs read committed state (`PrimaryReads`) or a
replica's view (`ReplicaReads`), never in a write transaction. On SQLite that means
they neither wait for nor hold up a writer: they answer while another connection
holds the write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

from orderdesk.auth.permissions import Role
from tests.factories import API, create_product, customer, place_order, staff_headers
from tests.helpers import DatabaseFactory, live_app


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    """Another connection to the file inside `BEGIN IMMEDIATE`: it holds SQLite's
    write lock until the block ends (rolled back, nothing written)."""
    path = make_url(database_url).database
    assert path, database_url
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def test_reads_answer_while_another_connection_holds_the_sqlite_write_lock(
    backend: str, database_factory: DatabaseFactory
) -> None:
    if backend != "sqlite":
        pytest.skip("the write lock is SQLite's; PostgreSQL readers never wait for writers")
    url = await database_factory.create_migrated(backend)
    # The subscription's target is never called: nothing is delivered in this test.
    targets = {"webhook_allow_private_targets": True, "webhook_https_required": False}
    async with live_app(url, **targets) as (client, container):
        admin = await staff_headers(client, container, Role.ADMIN)
        _, shopper = await customer(client)
        mug = await create_product(client, admin, stock=5)
        order = await place_order(client, shopper, (mug["id"], 1))
        subscription = await client.post(
            f"{API}/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["order.placed"]},
            headers=admin,
        )
        assert subscription.status_code == 201, subscription.text
        reads = {
            "/orders": shopper,
            f"/orders/{order['id']}": shopper,
            "/products": None,
            f"/products/{mug['id']}": None,
            "/users": admin,
            "/users/me": shopper,
            "/webhooks": admin,
            f"/webhooks/{subscription.json()['id']}/deliveries": admin,
            "/admin/events": admin,
        }

        with write_lock_held(url):
            answers = {
                path: (await client.get(f"{API}{path}", headers=headers)).status_code
                for path, headers in reads.items()
            }

        assert answers == dict.fromkeys(reads, 200)

"""The database connection pool under trouble, on PostgreSQL (SQLite has no
connections to lose or run out of).

A pooled connection that died while idle (the database restarted, a proxy dropped
it): the pool does not ping before every checkout, so the request that finds the
dead connection answers 503 with `Retry-After`, SQLAlchemy discards the pool's
connections, and the next request works. A pool whose connections all stay busy
past the pool timeout answers 503 too, instead of a 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import API, create_product, customer, place_order, post_order, staff_headers
from tests.helpers import DatabaseFactory, live_app
from tests.services import POSTGRES_ADMIN_URL

POOL_SIZE = 3
REFUSING_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def postgres_url(backend: str, database_factory: DatabaseFactory) -> str:
    if backend != "postgresql":
        pytest.skip("SQLite opens a file: there is no server connection to lose")
    return await database_factory.create_migrated(backend)


@dataclass(frozen=True)
class Shop:
    client: httpx.AsyncClient
    shopper: dict[str, str]
    mug: dict[str, Any]


@pytest.fixture
async def shop(postgres_url: str) -> AsyncIterator[Shop]:
    """The app on its own pool, a customer and a product with 10 in stock."""
    async with live_app(postgres_url, pool_size=POOL_SIZE) as (client, container):
        staff = await staff_headers(client, container)
        _, shopper = await customer(client)
        mug = await create_product(client, staff, stock=10)
        yield Shop(client, shopper, mug)


async def _kill_pooled_connections(database_url: str) -> int:
    """What a database restart does to the app's idle pooled connections."""
    name = make_url(database_url).database
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            result = await connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            return int(result.scalar_one())
    finally:
        await admin.dispose()


async def test_a_read_on_a_dead_connection_is_a_503_and_the_next_one_works(
    shop: Shop, postgres_url: str
) -> None:
    client, shopper = shop.client, shop.shopper
    order = await place_order(client, shopper, (shop.mug["id"], 1))
    assert await _kill_pooled_connections(postgres_url) >= 1

    lost = await client.get(f"{API}/orders/{order['id']}", headers=shopper)
    again = await client.get(f"{API}/orders/{order['id']}", headers=shopper)

    assert lost.status_code == 503, lost.text
    assert lost.headers["Retry-After"] == "1"
    assert lost.headers["content-type"] == "application/problem+json"
    assert lost.json()["code"] == "service_unavailable"
    assert "terminat" not in lost.text.lower()  # no driver message reaches the client
    assert again.status_code == 200, again.text
    assert again.json() == order


async def test_an_order_interrupted_by_a_dead_connection_can_be_retried_with_its_key(
    shop: Shop, postgres_url: str
) -> None:
    client, shopper = shop.client, shop.shopper
    body = {"lines": [{"product_id": shop.mug["id"], "quantity": 2}]}
    assert await _kill_pooled_connections(postgres_url) >= 1

    lost = await post_order(client, shopper, body, key="retry-me")
    retried = await post_order(client, shopper, body, key="retry-me")
    replayed = await post_order(client, shopper, body, key="retry-me")

    assert lost.status_code == 503, lost.text
    assert retried.status_code == 201, retried.text
    assert replayed.status_code == 201
    assert replayed.content == retried.content
    product = await client.get(f"{API}/products/{shop.mug['id']}")
    assert product.json()["stock"] == 10 - 2  # reserved once, by the retry


async def test_a_request_that_cannot_get_a_connection_in_time_is_a_503(
    postgres_url: str,
) -> None:
    async with live_app(postgres_url, pool_size=1, database_pool_timeout_seconds=0.2) as (
        client,
        container,
    ):
        staff = await staff_headers(client, container)
        async with container.database.engine.connect() as hog:
            await hog.execute(sa.text("SELECT 1"))  # holds the pool's only connection
            busy = await client.get(f"{API}/users/me", headers=staff)
        free = await client.get(f"{API}/users/me", headers=staff)

    assert busy.status_code == 503, busy.text
    assert busy.headers["Retry-After"] == "1"
    assert busy.json()["code"] == "service_unavailable"
    assert free.status_code == 200, free.text


async def test_readiness_does_not_wait_for_a_busy_pool(postgres_url: str) -> None:
    """The probe connects outside the pool: a burst that holds every pooled connection
    makes requests queue, not the instance look down."""
    async with (
        live_app(postgres_url, pool_size=1, database_pool_timeout_seconds=0.2) as (
            client,
            container,
        ),
        container.database.engine.connect() as hog,
    ):
        await hog.execute(sa.text("SELECT 1"))  # holds the pool's only connection
        ready = await client.get("/health/ready")

    assert ready.status_code == 200, ready.text


async def test_a_database_that_refuses_connections_is_a_503(postgres_url: str) -> None:
    """Down, not just a dead pooled connection: the driver's ConnectionRefusedError
    is a 503 too, never a 500."""
    async with live_app(REFUSING_POSTGRES) as (client, container):
        token = container.tokens.issue_access_token(
            user_id=uuid.uuid4(), role="customer", token_version=0, session_id=None, now=now()
        )
        response = await client.get(
            f"{API}/orders/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "service_unavailable"
    assert "127.0.0.1" not in response.text

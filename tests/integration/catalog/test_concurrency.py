"""The catalog under real concurrency, on a database of its own: optimistic locking
and the connection pool."""

from __future__ import annotations

import asyncio

from tests.factories import (
    API,
    create_product,
    read_product,
    staff_headers,
)
from tests.helpers import DatabaseFactory, live_app

PRODUCTS = f"{API}/products"


# --- optimistic locking under real concurrency ------------------------------------


async def test_concurrent_updates_with_the_same_version_never_both_win(
    backend: str, database_factory: DatabaseFactory
) -> None:
    url = await database_factory.create_migrated(backend)
    async with live_app(url) as (client, container):
        staff = await staff_headers(client, container)
        product = await create_product(client, staff, name="Mug", stock=1)
        path = f"{PRODUCTS}/{product['id']}"
        names = [f"name-{n}" for n in range(8)]

        async with asyncio.timeout(60):
            responses = await asyncio.gather(
                *(
                    client.patch(path, json={"name": n}, headers={**staff, "If-Match": '"1"'})
                    for n in names
                )
            )

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [412] * (len(names) - 1)
        winner = next(r for r in responses if r.status_code == 200).json()["name"]
        after = await read_product(client, product["id"])
        assert (after["name"], after["version"]) == (winner, 2)


async def test_concurrent_signed_in_reads_do_not_exhaust_the_connection_pool(
    backend: str, database_factory: DatabaseFactory
) -> None:
    # More concurrent signed-in catalog reads than the pool has connections: each
    # request must be able to finish with the connections that exist.
    pool_size = 2
    url = await database_factory.create_migrated(backend)
    async with live_app(url, pool_size=pool_size) as (client, container):
        staff = await staff_headers(client, container)
        product = await create_product(client, staff)

        async with asyncio.timeout(90):
            responses = await asyncio.gather(
                *(client.get(PRODUCTS, headers=staff) for _ in range(pool_size)),
                *(
                    client.get(f"{PRODUCTS}/{product['id']}", headers=staff)
                    for _ in range(pool_size)
                ),
            )

        assert [response.status_code for response in responses] == [200] * (2 * pool_size)

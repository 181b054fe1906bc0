"""Concurrent requests on one server, on both backends: cancels return stock once,
orders for the same products all go through."""

from __future__ import annotations

import asyncio

from tests.factories import (
    API,
    create_product,
    customer,
    lines,
    place_order,
    post_order,
    staff_headers,
    stock_of,
)
from tests.helpers import DatabaseFactory, live_app

ORDERS = f"{API}/orders"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"


async def test_concurrent_cancels_return_stock_exactly_once(
    backend: str, database_factory: DatabaseFactory
) -> None:
    url = await database_factory.create_migrated(backend)
    async with live_app(url) as (client, container):
        staff = await staff_headers(client, container)
        _, shopper = await customer(client)
        mug = await create_product(client, staff, stock=10)
        order = await place_order(client, shopper, (mug["id"], 4))

        async with asyncio.timeout(60):
            responses = await asyncio.gather(
                *(
                    client.post(f"{ORDERS}/{order['id']}/cancel", headers=who)
                    for who in [shopper, staff] * 4
                )
            )

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [409] * 7
        assert await stock_of(container, mug["id"]) == 10


# --- concurrent orders for the same products, both backends --------------------------


async def test_concurrent_orders_for_the_same_products_all_go_through(
    backend: str, database_factory: DatabaseFactory
) -> None:
    """Twelve orders at once for the same three products, each listing them in another
    order: the reservations lock the rows in id order, so none deadlocks or fails, and
    every unit is counted once."""
    url = await database_factory.create_migrated(backend)
    async with live_app(url) as (client, container):
        staff = await staff_headers(client, container)
        products = [await create_product(client, staff, stock=100) for _ in range(3)]
        shoppers = [(await customer(client))[1] for _ in range(12)]

        async with asyncio.timeout(60):
            responses = await asyncio.gather(
                *(
                    post_order(
                        client,
                        shopper,
                        lines(*((p["id"], 1) for p in products[n % 3 :] + products[: n % 3])),
                    )
                    for n, shopper in enumerate(shoppers)
                )
            )

        assert [response.status_code for response in responses] == [201] * 12, [
            response.text for response in responses if response.status_code != 201
        ]
        for product in products:
            assert await stock_of(container, product["id"]) == 100 - 12

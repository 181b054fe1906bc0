"""The periodic expiry of unpaid orders: old pending ones are cancelled once and
their stock returned; recent or paid ones are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.orders import service as order_service
from orderdesk.orders.models import OrderStatus
from tests.factories import (
    API,
    Headers,
    create_product,
    place_order,
    set_order_created_at,
    set_order_status,
    stock_of,
    stored_order,
)

ORDERS = f"{API}/orders"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"


async def test_expiry_cancels_old_unpaid_orders_and_returns_their_stock(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    cap = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 3), (cap["id"], 1))
    await set_order_created_at(container, order["id"], datetime.now(UTC) - timedelta(hours=2))

    async with unit_of_work(container.database) as uow:
        expired = await order_service.expire_unpaid_orders(uow, max_age=timedelta(hours=1))

    assert expired == 1
    assert (await stored_order(container, order["id"])).status == OrderStatus.CANCELLED
    assert [await stock_of(container, p["id"]) for p in (mug, cap)] == [10, 10]


async def test_expiry_leaves_recent_unpaid_orders_alone(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 3))
    await set_order_created_at(container, order["id"], datetime.now(UTC) - timedelta(minutes=30))

    async with unit_of_work(container.database) as uow:
        expired = await order_service.expire_unpaid_orders(uow, max_age=timedelta(hours=1))

    assert expired == 0
    assert (await stored_order(container, order["id"])).status == OrderStatus.PENDING_PAYMENT
    assert await stock_of(container, mug["id"]) == 7


async def test_expiry_leaves_old_paid_orders_alone(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 3))
    await set_order_status(container, order["id"], OrderStatus.PAID)
    await set_order_created_at(container, order["id"], datetime.now(UTC) - timedelta(days=2))

    async with unit_of_work(container.database) as uow:
        expired = await order_service.expire_unpaid_orders(uow, max_age=timedelta(hours=1))

    assert expired == 0
    assert (await stored_order(container, order["id"])).status == OrderStatus.PAID
    assert await stock_of(container, mug["id"]) == 7


async def test_expired_order_cannot_be_cancelled_again(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 3))
    await set_order_created_at(container, order["id"], datetime.now(UTC) - timedelta(hours=2))
    async with unit_of_work(container.database) as uow:
        await order_service.expire_unpaid_orders(uow, max_age=timedelta(hours=1))

    response = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=alice[1])

    assert response.status_code == 409
    assert await stock_of(container, mug["id"]) == 10


async def test_running_expiry_twice_releases_stock_once(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 3))
    await set_order_created_at(container, order["id"], datetime.now(UTC) - timedelta(hours=2))

    counts = []
    for _ in range(2):
        async with unit_of_work(container.database) as uow:
            counts.append(await order_service.expire_unpaid_orders(uow, max_age=timedelta(hours=1)))

    assert counts == [1, 0]
    assert await stock_of(container, mug["id"]) == 10

"""The periodic expiry of unpaid orders: old pending ones are cancelled once and
their stock returned; recent or paid ones are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

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
MAX_AGE = timedelta(hours=1)


async def expire(c: Container) -> int:
    async with unit_of_work(c.database) as uow:
        return await order_service.expire_unpaid_orders(uow, max_age=MAX_AGE)


@pytest.fixture
async def mug_order(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alice's order of 3 mugs, out of a stock of 10: (the product, the order)."""
    mug = await create_product(client, staff, stock=10)
    return mug, await place_order(client, alice[1], (mug["id"], 3))


async def age(c: Container, order: dict[str, Any], by: timedelta) -> None:
    await set_order_created_at(c, order["id"], datetime.now(UTC) - by)


async def test_expiry_cancels_old_unpaid_orders_and_returns_their_stock(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    cap = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 3), (cap["id"], 1))
    await age(container, order, timedelta(hours=2))

    assert await expire(container) == 1
    assert (await stored_order(container, order["id"])).status == OrderStatus.CANCELLED
    assert [await stock_of(container, p["id"]) for p in (mug, cap)] == [10, 10]


@pytest.mark.parametrize(
    ("status", "older_by"),
    [
        pytest.param(OrderStatus.PENDING_PAYMENT, timedelta(minutes=30), id="recent-unpaid"),
        pytest.param(OrderStatus.PAID, timedelta(days=2), id="old-paid"),
    ],
)
async def test_expiry_leaves_recent_unpaid_and_paid_orders_alone(
    container: Container,
    mug_order: tuple[dict[str, Any], dict[str, Any]],
    status: OrderStatus,
    older_by: timedelta,
) -> None:
    mug, order = mug_order
    if status is not OrderStatus.PENDING_PAYMENT:
        await set_order_status(container, order["id"], status)
    await age(container, order, older_by)

    assert await expire(container) == 0
    assert (await stored_order(container, order["id"])).status == status
    assert await stock_of(container, mug["id"]) == 7


async def test_expired_order_cannot_be_cancelled_again(
    client: httpx.AsyncClient,
    container: Container,
    alice: tuple[dict[str, Any], Headers],
    mug_order: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    mug, order = mug_order
    await age(container, order, timedelta(hours=2))
    await expire(container)

    response = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=alice[1])

    assert response.status_code == 409
    assert await stock_of(container, mug["id"]) == 10


async def test_running_expiry_twice_releases_stock_once(
    container: Container, mug_order: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    mug, order = mug_order
    await age(container, order, timedelta(hours=2))

    assert [await expire(container), await expire(container)] == [1, 0]
    assert await stock_of(container, mug["id"]) == 10

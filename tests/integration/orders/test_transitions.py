"""The order state machine over HTTP (cancel, fulfil) and who may see and change
which orders: someone else's order is a 404, never a 403."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orderdesk.container import Container
from orderdesk.orders.models import OrderStatus
from tests.factories import (
    API,
    Headers,
    create_product,
    place_order,
    set_order_status,
    stock_of,
    stored_order,
)
from tests.helpers import problem

ORDERS = f"{API}/orders"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"


async def test_owner_can_cancel_a_pending_order_and_its_stock_returns(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    cap = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 3), (cap["id"], 2))

    response = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=alice[1])

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["version"] == order["version"] + 1
    assert [await stock_of(container, p["id"]) for p in (mug, cap)] == [10, 10]


async def test_staff_can_cancel_a_customers_order(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 4))

    response = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=staff)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert await stock_of(container, mug["id"]) == 10


async def test_cancelling_twice_is_409_and_returns_stock_once(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 4))
    await client.post(f"{ORDERS}/{order['id']}/cancel", headers=alice[1])

    again = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=alice[1])

    assert again.status_code == 409
    assert problem(again)["code"] == "illegal_transition"
    assert await stock_of(container, mug["id"]) == 10


@pytest.mark.parametrize(
    "status", [OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.REFUNDED], ids=str
)
async def test_order_past_payment_cannot_be_cancelled(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    status: OrderStatus,
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 4))
    await set_order_status(container, order["id"], status)

    response = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=staff)

    assert response.status_code == 409
    assert problem(response)["code"] == "illegal_transition"
    assert (await stored_order(container, order["id"])).status == status
    assert await stock_of(container, mug["id"]) == 6


async def test_staff_can_fulfill_a_paid_order_and_stock_stays_taken(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 4))
    await set_order_status(container, order["id"], OrderStatus.PAID)

    response = await client.post(f"{ORDERS}/{order['id']}/fulfill", headers=staff)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "fulfilled"
    assert await stock_of(container, mug["id"]) == 6


@pytest.mark.parametrize(
    "status",
    [
        OrderStatus.PENDING_PAYMENT,
        OrderStatus.CANCELLED,
        OrderStatus.FULFILLED,
        OrderStatus.REFUNDED,
    ],
    ids=str,
)
async def test_order_that_is_not_paid_cannot_be_fulfilled(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    status: OrderStatus,
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 1))
    if status is not OrderStatus.PENDING_PAYMENT:
        await set_order_status(container, order["id"], status)

    response = await client.post(f"{ORDERS}/{order['id']}/fulfill", headers=staff)

    assert response.status_code == 409
    assert problem(response)["code"] == "illegal_transition"
    assert (await stored_order(container, order["id"])).status == status


async def test_customer_cannot_fulfill_even_their_own_paid_order(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 1))
    await set_order_status(container, order["id"], OrderStatus.PAID)

    response = await client.post(f"{ORDERS}/{order['id']}/fulfill", headers=alice[1])

    assert response.status_code == 403
    assert (await stored_order(container, order["id"])).status == OrderStatus.PAID


async def test_fulfilling_an_unknown_order_is_404(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    response = await client.post(f"{ORDERS}/{UNKNOWN_ID}/fulfill", headers=staff)

    assert response.status_code == 404
    assert problem(response)["code"] == "order_not_found"


# --- other people's orders --------------------------------------------------------


async def test_another_customers_order_is_404_not_403(
    client: httpx.AsyncClient,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    bob: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff)
    order = await place_order(client, alice[1], (mug["id"], 1))

    response = await client.get(f"{ORDERS}/{order['id']}", headers=bob[1])

    assert response.status_code == 404
    assert problem(response)["code"] == "order_not_found"


async def test_another_customers_order_cannot_be_cancelled_and_is_404(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    bob: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    order = await place_order(client, alice[1], (mug["id"], 2))

    response = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=bob[1])

    assert response.status_code == 404
    assert (await stored_order(container, order["id"])).status == OrderStatus.PENDING_PAYMENT
    assert await stock_of(container, mug["id"]) == 8


async def test_unknown_order_is_404(
    client: httpx.AsyncClient, alice: tuple[dict[str, Any], Headers]
) -> None:
    response = await client.get(f"{ORDERS}/{UNKNOWN_ID}", headers=alice[1])

    assert response.status_code == 404


async def test_staff_can_read_any_order(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    mug = await create_product(client, staff)
    order = await place_order(client, alice[1], (mug["id"], 1))

    response = await client.get(f"{ORDERS}/{order['id']}", headers=staff)

    assert response.status_code == 200
    assert response.json()["id"] == order["id"]

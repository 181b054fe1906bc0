"""Placing an order over HTTP: server-side pricing, line snapshots, input
bounds and the atomic, all-or-nothing stock reservation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orderdesk.container import Container
from tests.factories import (
    API,
    Headers,
    create_product,
    lines,
    orders_count,
    place_order,
    post_order,
    stock_of,
)
from tests.helpers import problem

ORDERS = f"{API}/orders"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"


async def test_order_is_priced_from_the_catalog(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    user, headers = alice
    mug = await create_product(client, staff, name="Mug", amount=1299, stock=10)
    cap = await create_product(client, staff, name="Cap", amount=1899, stock=10)

    response = await post_order(client, headers, lines((mug["id"], 2), (cap["id"], 1)))

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending_payment"
    assert order["user_id"] == user["id"]
    assert order["version"] == 1
    assert order["lines"] == [
        {
            "product_id": mug["id"],
            "sku": mug["sku"],
            "name": "Mug",
            "unit_price": {"amount": 1299, "currency": "EUR"},
            "quantity": 2,
            "line_total": {"amount": 2598, "currency": "EUR"},
        },
        {
            "product_id": cap["id"],
            "sku": cap["sku"],
            "name": "Cap",
            "unit_price": {"amount": 1899, "currency": "EUR"},
            "quantity": 1,
            "line_total": {"amount": 1899, "currency": "EUR"},
        },
    ]
    assert order["total"] == {"amount": 4497, "currency": "EUR"}


async def test_order_total_takes_the_currency_of_its_products(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    tee = await create_product(client, staff, amount=2000, currency="USD")

    order = await place_order(client, alice[1], (tee["id"], 3))

    assert order["total"] == {"amount": 6000, "currency": "USD"}


async def test_placing_an_order_reserves_its_stock(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=10)
    cap = await create_product(client, staff, stock=4)

    await place_order(client, alice[1], (mug["id"], 3), (cap["id"], 4))

    assert await stock_of(container, mug["id"]) == 7
    assert await stock_of(container, cap["id"]) == 0


async def test_order_can_be_read_back_by_its_owner(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    mug = await create_product(client, staff)
    order = await place_order(client, alice[1], (mug["id"], 1))

    response = await client.get(f"{ORDERS}/{order['id']}", headers=alice[1])

    assert response.status_code == 200
    assert response.json() == order


async def test_order_without_idempotency_key_is_400(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=5)

    response = await client.post(ORDERS, json=lines((mug["id"], 1)), headers=alice[1])

    assert response.status_code == 400
    assert problem(response)["code"] == "idempotency_key_required"
    assert await stock_of(container, mug["id"]) == 5
    assert await orders_count(container) == 0


async def test_anonymous_visitor_cannot_place_an_order(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    mug = await create_product(client, staff)

    response = await client.post(
        ORDERS, json=lines((mug["id"], 1)), headers={"Idempotency-Key": "k"}
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    "extra",
    [
        {"total": {"amount": 1, "currency": "EUR"}},
        {"status": "paid"},
        {"user_id": UNKNOWN_ID},
        {"currency": "EUR"},
    ],
    ids=["total", "status", "user_id", "currency"],
)
async def test_client_cannot_send_server_owned_order_fields(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    extra: dict[str, Any],
) -> None:
    mug = await create_product(client, staff, stock=5)

    response = await post_order(client, alice[1], {**lines((mug["id"], 1)), **extra})

    assert response.status_code == 422
    assert set(extra) <= {error["field"] for error in problem(response)["errors"]}
    assert await stock_of(container, mug["id"]) == 5


@pytest.mark.parametrize(
    "extra",
    [{"unit_price": {"amount": 1, "currency": "EUR"}}, {"price": 1}, {"line_total": 1}],
    ids=["unit_price", "price", "line_total"],
)
async def test_client_cannot_send_a_price_on_a_line(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    extra: dict[str, Any],
) -> None:
    mug = await create_product(client, staff, stock=5)
    body = {"lines": [{"product_id": mug["id"], "quantity": 1, **extra}]}

    response = await post_order(client, alice[1], body)

    assert response.status_code == 422
    assert await orders_count(container) == 0


@pytest.mark.parametrize("quantity", [0, -1, 10_001])
async def test_quantity_out_of_range_is_422(
    client: httpx.AsyncClient,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    quantity: int,
) -> None:
    mug = await create_product(client, staff, stock=5)

    response = await post_order(client, alice[1], lines((mug["id"], quantity)))

    assert response.status_code == 422


async def test_order_without_lines_is_422(
    client: httpx.AsyncClient, alice: tuple[dict[str, Any], Headers]
) -> None:
    response = await post_order(client, alice[1], {"lines": []})

    assert response.status_code == 422


async def test_same_product_on_two_lines_is_422(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=5)

    response = await post_order(client, alice[1], lines((mug["id"], 1), (mug["id"], 2)))

    assert response.status_code == 422
    assert problem(response)["code"] == "duplicate_product"
    assert await stock_of(container, mug["id"]) == 5


async def test_order_lines_are_snapshots_unaffected_by_later_catalog_edits(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    mug = await create_product(client, staff, name="Mug", amount=1000, stock=5)
    order = await place_order(client, alice[1], (mug["id"], 2))
    current = (await client.get(f"{API}/products/{mug['id']}")).headers["ETag"]

    edited = await client.patch(
        f"{API}/products/{mug['id']}",
        json={"name": "Renamed mug", "price": {"amount": 5000, "currency": "USD"}},
        headers={**staff, "If-Match": current},
    )
    assert edited.status_code == 200, edited.text

    again = (await client.get(f"{ORDERS}/{order['id']}", headers=alice[1])).json()
    assert again["lines"] == order["lines"]
    assert again["lines"][0]["name"] == "Mug"
    assert again["lines"][0]["unit_price"] == {"amount": 1000, "currency": "EUR"}
    assert again["total"] == {"amount": 2000, "currency": "EUR"}


async def test_order_lines_survive_deleting_the_product(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    mug = await create_product(client, staff, name="Mug", stock=5)
    order = await place_order(client, alice[1], (mug["id"], 1))

    await client.delete(f"{API}/products/{mug['id']}", headers=staff)

    again = await client.get(f"{ORDERS}/{order['id']}", headers=alice[1])
    assert again.status_code == 200
    assert again.json()["lines"] == order["lines"]


async def test_mixed_currencies_are_422_and_reserve_nothing(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    eur = await create_product(client, staff, currency="EUR", stock=5)
    usd = await create_product(client, staff, currency="USD", stock=5)

    response = await post_order(client, alice[1], lines((eur["id"], 1), (usd["id"], 1)))

    assert response.status_code == 422
    assert problem(response)["code"] == "mixed_currencies"
    assert [await stock_of(container, p["id"]) for p in (eur, usd)] == [5, 5]
    assert await orders_count(container) == 0


async def test_unknown_product_is_422_and_reserves_nothing(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=5)

    response = await post_order(client, alice[1], lines((mug["id"], 1), (UNKNOWN_ID, 1)))

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "unknown_products"
    assert UNKNOWN_ID in body["detail"]
    assert await stock_of(container, mug["id"]) == 5


async def test_inactive_product_cannot_be_ordered(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    hidden = await create_product(client, staff, is_active=False, stock=5)

    response = await post_order(client, alice[1], lines((hidden["id"], 1)))

    assert response.status_code == 422
    assert problem(response)["code"] == "unknown_products"
    assert await stock_of(container, hidden["id"]) == 5


async def test_deleted_product_cannot_be_ordered(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    gone = await create_product(client, staff, stock=5)
    await client.delete(f"{API}/products/{gone['id']}", headers=staff)

    response = await post_order(client, alice[1], lines((gone["id"], 1)))

    assert response.status_code == 422
    assert problem(response)["code"] == "unknown_products"
    assert await stock_of(container, gone["id"]) == 5


async def test_partially_unfulfillable_order_is_409_and_leaves_all_stock_untouched(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    plenty = await create_product(client, staff, stock=10)
    scarce = await create_product(client, staff, stock=2)
    also_plenty = await create_product(client, staff, stock=10)

    response = await post_order(
        client,
        alice[1],
        lines((plenty["id"], 3), (scarce["id"], 5), (also_plenty["id"], 1)),
    )

    assert response.status_code == 409
    body = problem(response)
    assert body["code"] == "insufficient_stock"
    assert body["shortages"] == [{"product_id": scarce["id"], "requested": 5, "available": 2}]
    stocks = [await stock_of(container, p["id"]) for p in (plenty, scarce, also_plenty)]
    assert stocks == [10, 2, 10]
    assert await orders_count(container) == 0


async def test_every_short_product_is_listed_in_shortages(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    first = await create_product(client, staff, stock=0)
    second = await create_product(client, staff, stock=1)

    response = await post_order(client, alice[1], lines((first["id"], 1), (second["id"], 2)))

    assert response.status_code == 409
    shortages = {s["product_id"]: s for s in problem(response)["shortages"]}
    assert shortages == {
        first["id"]: {"product_id": first["id"], "requested": 1, "available": 0},
        second["id"]: {"product_id": second["id"], "requested": 2, "available": 1},
    }


async def test_the_last_units_can_be_ordered(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=3)

    await place_order(client, alice[1], (mug["id"], 3))
    response = await post_order(client, alice[1], lines((mug["id"], 1)))

    assert response.status_code == 409
    assert await stock_of(container, mug["id"]) == 0

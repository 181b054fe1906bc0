"""Orders over HTTP: placing (server-side pricing, snapshots, atomic stock
reservation), the state machine, who may see and do what, listing, and expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.orders import service as order_service
from orderdesk.orders.models import OrderStatus
from tests.conftest import DatabaseFactory
from tests.integration.catalog_fixtures import (
    API,
    Headers,
    all_pages,
    create_product,
    customer,
    lines,
    live_app,
    orders_count,
    place_order,
    post_order,
    problem,
    set_order_created_at,
    set_order_status,
    staff_headers,
    stock_of,
    stored_order,
)

ORDERS = f"{API}/orders"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> tuple[dict[str, Any], Headers]:
    return await customer(client)


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> tuple[dict[str, Any], Headers]:
    return await customer(client)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


# --- placing ------------------------------------------------------------------------


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


# --- the state machine --------------------------------------------------------------


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


# --- listing --------------------------------------------------------------------------


async def test_customer_lists_only_their_own_orders_newest_first(
    client: httpx.AsyncClient,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    bob: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=50)
    mine = [await place_order(client, alice[1], (mug["id"], 1)) for _ in range(3)]
    await place_order(client, bob[1], (mug["id"], 1))

    body = (await client.get(ORDERS, headers=alice[1])).json()

    assert ids(body["items"]) == [order["id"] for order in reversed(mine)]
    assert body["next_cursor"] is None


async def test_customer_asking_for_someone_elses_orders_still_gets_only_their_own(
    client: httpx.AsyncClient,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    bob: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=50)
    mine = await place_order(client, alice[1], (mug["id"], 1))
    await place_order(client, bob[1], (mug["id"], 1))

    response = await client.get(ORDERS, params={"user_id": bob[0]["id"]}, headers=alice[1])

    assert response.status_code == 200
    assert ids(response.json()["items"]) == [mine["id"]]


async def test_staff_see_everyones_orders(
    client: httpx.AsyncClient,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    bob: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=50)
    first = await place_order(client, alice[1], (mug["id"], 1))
    second = await place_order(client, bob[1], (mug["id"], 1))

    items = (await client.get(ORDERS, headers=staff)).json()["items"]

    assert ids(items) == [second["id"], first["id"]]


async def test_staff_can_filter_orders_by_customer(
    client: httpx.AsyncClient,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
    bob: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=50)
    await place_order(client, alice[1], (mug["id"], 1))
    bobs = await place_order(client, bob[1], (mug["id"], 1))

    items = (await client.get(ORDERS, params={"user_id": bob[0]["id"]}, headers=staff)).json()

    assert ids(items["items"]) == [bobs["id"]]


async def test_orders_can_be_filtered_by_status(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    mug = await create_product(client, staff, stock=50)
    kept = await place_order(client, alice[1], (mug["id"], 1))
    dropped = await place_order(client, alice[1], (mug["id"], 1))
    await client.post(f"{ORDERS}/{dropped['id']}/cancel", headers=alice[1])

    pending = await client.get(ORDERS, params={"status": "pending_payment"}, headers=alice[1])
    cancelled = await client.get(ORDERS, params={"status": "cancelled"}, headers=alice[1])

    assert ids(pending.json()["items"]) == [kept["id"]]
    assert ids(cancelled.json()["items"]) == [dropped["id"]]


async def test_unknown_status_filter_is_422(
    client: httpx.AsyncClient, alice: tuple[dict[str, Any], Headers]
) -> None:
    response = await client.get(ORDERS, params={"status": "shipped"}, headers=alice[1])

    assert response.status_code == 422


async def test_orders_can_be_filtered_by_creation_time(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    alice: tuple[dict[str, Any], Headers],
) -> None:
    mug = await create_product(client, staff, stock=50)
    old, middle, new = [await place_order(client, alice[1], (mug["id"], 1)) for _ in range(3)]
    now = datetime.now(UTC)
    await set_order_created_at(container, old["id"], now - timedelta(days=10))
    await set_order_created_at(container, middle["id"], now - timedelta(days=5))

    def window(**bounds: datetime) -> dict[str, str]:
        return {name: moment.isoformat() for name, moment in bounds.items()}

    after = await client.get(
        ORDERS, params=window(created_after=now - timedelta(days=7)), headers=alice[1]
    )
    before = await client.get(
        ORDERS, params=window(created_before=now - timedelta(days=7)), headers=alice[1]
    )
    between = await client.get(
        ORDERS,
        params=window(
            created_after=now - timedelta(days=7), created_before=now - timedelta(days=1)
        ),
        headers=alice[1],
    )

    assert ids(after.json()["items"]) == [new["id"], middle["id"]]
    assert ids(before.json()["items"]) == [old["id"]]
    assert ids(between.json()["items"]) == [middle["id"]]


async def test_creation_time_filter_without_a_time_zone_is_not_a_server_error(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    # A timestamp without an offset is either read as UTC or refused as invalid
    # input; a 5xx is always a bug.
    mug = await create_product(client, staff, stock=5)
    order = await place_order(client, alice[1], (mug["id"], 1))

    response = await client.get(
        ORDERS, params={"created_after": "2000-01-01T00:00:00"}, headers=alice[1]
    )

    assert response.status_code in {200, 422}, response.text
    if response.status_code == 200:
        assert ids(response.json()["items"]) == [order["id"]]


async def test_order_pages_follow_the_cursor_newest_first(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    mug = await create_product(client, staff, stock=50)
    placed = [await place_order(client, alice[1], (mug["id"], 1)) for _ in range(5)]

    pages = await all_pages(client, ORDERS, headers=alice[1], params={"limit": 2})

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [order["id"] for page in pages for order in page] == ids(list(reversed(placed)))


async def test_listed_orders_carry_their_lines(
    client: httpx.AsyncClient, staff: Headers, alice: tuple[dict[str, Any], Headers]
) -> None:
    mug = await create_product(client, staff, stock=50)
    cap = await create_product(client, staff, stock=50)
    first = await place_order(client, alice[1], (mug["id"], 1))
    second = await place_order(client, alice[1], (cap["id"], 2), (mug["id"], 3))

    items = (await client.get(ORDERS, headers=alice[1])).json()["items"]

    assert items == [second, first]


async def test_anonymous_visitor_cannot_list_orders(client: httpx.AsyncClient) -> None:
    response = await client.get(ORDERS)

    assert response.status_code == 401


# --- expiry ---------------------------------------------------------------------------


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


# --- concurrent cancels, both backends --------------------------------------------


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

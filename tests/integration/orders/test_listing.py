"""Listing orders: own orders only for customers, everyone's for staff, filters
and keyset pages newest first, each order with its lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from orderdesk.container import Container
from tests.factories import API, Headers, create_product, place_order, set_order_created_at
from tests.helpers import all_pages

ORDERS = f"{API}/orders"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


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

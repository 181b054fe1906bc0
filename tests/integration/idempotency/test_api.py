"""`Idempotency-Key` on POST /orders: scoped to the caller, replays byte for byte,
refuses reuse with another body, stores nothing for failed requests, forgets expired
keys, and lets concurrent duplicates act once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from orderdesk.container import Container
from tests.factories import (
    API,
    Headers,
    create_product,
    customer,
    expire_idempotency_keys,
    lines,
    orders_count,
    post_order,
    staff_headers,
    stock_of,
)
from tests.helpers import DatabaseFactory, live_app, problem

ORDERS = f"{API}/orders"
REPLAYED = "Idempotent-Replayed"


@pytest.fixture
async def mug(client: httpx.AsyncClient, staff: Headers) -> dict[str, Any]:
    return await create_product(client, staff, name="Mug", amount=1299, stock=10)


async def test_replay_with_the_same_key_and_body_is_byte_identical_and_marked(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    body = lines((mug["id"], 2))

    first = await post_order(client, shopper, body, key="order-1")
    replay = await post_order(client, shopper, body, key="order-1")

    assert first.status_code == 201
    assert replay.status_code == 201
    assert replay.content == first.content
    assert replay.headers[REPLAYED] == "true"
    assert REPLAYED not in first.headers
    assert await orders_count(container) == 1
    assert await stock_of(container, mug["id"]) == 8


async def test_replay_ignores_json_formatting_and_key_order(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    compact = f'{{"lines":[{{"product_id":"{mug["id"]}","quantity":1}}]}}'
    spaced = f'{{ "lines" : [ {{ "quantity" : 1, "product_id" : "{mug["id"]}" }} ] }}'
    headers = {**shopper, "Idempotency-Key": "order-1", "Content-Type": "application/json"}

    first = await client.post(ORDERS, content=compact, headers=headers)
    replay = await client.post(ORDERS, content=spaced, headers=headers)

    assert first.status_code == 201
    assert replay.content == first.content
    assert replay.headers[REPLAYED] == "true"
    assert await orders_count(container) == 1


async def test_same_key_with_another_body_is_422_and_places_nothing(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    await post_order(client, shopper, lines((mug["id"], 1)), key="order-1")

    reused = await post_order(client, shopper, lines((mug["id"], 3)), key="order-1")

    assert reused.status_code == 422
    assert problem(reused)["code"] == "idempotency_key_reused"
    assert await orders_count(container) == 1
    assert await stock_of(container, mug["id"]) == 9


async def test_keys_are_scoped_to_the_caller(
    client: httpx.AsyncClient, container: Container, mug: dict[str, Any]
) -> None:
    alice, alices = await customer(client)
    bob, bobs = await customer(client)
    body = lines((mug["id"], 1))

    first = await post_order(client, alices, body, key="shared-key")
    second = await post_order(client, bobs, body, key="shared-key")

    assert (first.status_code, second.status_code) == (201, 201)
    assert REPLAYED not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert (first.json()["user_id"], second.json()["user_id"]) == (alice["id"], bob["id"])
    assert await orders_count(container) == 2
    assert await stock_of(container, mug["id"]) == 8


async def test_different_keys_place_different_orders(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    body = lines((mug["id"], 1))

    first = await post_order(client, shopper, body, key="order-1")
    second = await post_order(client, shopper, body, key="order-2")

    assert first.json()["id"] != second.json()["id"]
    assert await orders_count(container) == 2


async def test_request_that_fails_validation_stores_nothing_so_a_corrected_retry_works(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    invalid = await post_order(client, shopper, lines((mug["id"], 0)), key="order-1")

    corrected = await post_order(client, shopper, lines((mug["id"], 2)), key="order-1")

    assert invalid.status_code == 422
    assert corrected.status_code == 201, corrected.text
    assert REPLAYED not in corrected.headers
    assert await stock_of(container, mug["id"]) == 8


async def test_request_refused_by_the_domain_stores_nothing_so_a_corrected_retry_works(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    unknown = "0190f5f0-0000-7000-8000-000000000000"
    refused = await post_order(client, shopper, lines((unknown, 1)), key="order-1")

    corrected = await post_order(client, shopper, lines((mug["id"], 1)), key="order-1")

    assert refused.status_code == 422
    assert problem(refused)["code"] == "unknown_products"
    assert corrected.status_code == 201, corrected.text
    assert await orders_count(container) == 1


async def test_insufficient_stock_stores_nothing_so_the_same_request_succeeds_after_restock(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    shopper: Headers,
    mug: dict[str, Any],
) -> None:
    body = lines((mug["id"], 15))
    short = await post_order(client, shopper, body, key="order-1")
    restocked = await client.patch(
        f"{API}/products/{mug['id']}", json={"stock": 20}, headers={**staff, "If-Match": '"1"'}
    )
    assert restocked.status_code == 200, restocked.text

    retry = await post_order(client, shopper, body, key="order-1")

    assert short.status_code == 409
    assert problem(short)["code"] == "insufficient_stock"
    assert retry.status_code == 201, retry.text
    assert REPLAYED not in retry.headers
    assert await stock_of(container, mug["id"]) == 5


async def test_expired_key_is_forgotten_and_the_request_runs_again(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    body = lines((mug["id"], 1))
    first = await post_order(client, shopper, body, key="order-1")
    assert await expire_idempotency_keys(container, "order-1", datetime.now(UTC)) == 1

    again = await post_order(client, shopper, body, key="order-1")

    assert again.status_code == 201
    assert REPLAYED not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert await orders_count(container) == 2
    assert await stock_of(container, mug["id"]) == 8


async def test_expired_key_may_be_used_with_another_body(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    await post_order(client, shopper, lines((mug["id"], 1)), key="order-1")
    await expire_idempotency_keys(container, "order-1", datetime.now(UTC) - timedelta(days=1))

    reused = await post_order(client, shopper, lines((mug["id"], 4)), key="order-1")

    assert reused.status_code == 201, reused.text
    assert reused.json()["lines"][0]["quantity"] == 4


async def test_key_that_has_not_expired_yet_still_replays(
    client: httpx.AsyncClient, container: Container, shopper: Headers, mug: dict[str, Any]
) -> None:
    body = lines((mug["id"], 1))
    first = await post_order(client, shopper, body, key="order-1")
    soon = datetime.now(UTC) + timedelta(minutes=5)
    await expire_idempotency_keys(container, "order-1", soon)

    replay = await post_order(client, shopper, body, key="order-1")

    assert replay.content == first.content
    assert replay.headers[REPLAYED] == "true"


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "caf\u00e9"])
async def test_malformed_key_is_rejected(
    client: httpx.AsyncClient,
    container: Container,
    shopper: Headers,
    mug: dict[str, Any],
    key: str,
) -> None:
    response = await client.post(
        ORDERS,
        json=lines((mug["id"], 1)),
        headers=[
            *((name.encode(), value.encode()) for name, value in shopper.items()),
            (b"Idempotency-Key", key.encode()),
        ],
    )

    assert response.status_code in {400, 422}, response.text
    assert await orders_count(container) == 0


async def test_concurrent_duplicates_place_one_order(
    backend: str, database_factory: DatabaseFactory
) -> None:
    url = await database_factory.create_migrated(backend)
    async with live_app(url) as (client, container):
        staff = await staff_headers(client, container)
        _, shopper = await customer(client)
        mug = await create_product(client, staff, stock=100)
        body = lines((mug["id"], 3))

        async with asyncio.timeout(60):
            responses = await asyncio.gather(
                *(post_order(client, shopper, body, key="burst") for _ in range(12))
            )

        created = [response for response in responses if response.status_code == 201]
        others = [response for response in responses if response.status_code != 201]
        assert created, [response.text for response in responses]
        assert all(response.content == created[0].content for response in created)
        assert all(response.status_code == 409 for response in others), [
            response.text for response in others
        ]
        listed = (await client.get(ORDERS, headers=shopper)).json()["items"]
        assert [order["id"] for order in listed] == [created[0].json()["id"]]
        assert await stock_of(container, mug["id"]) == 97

"""Browsing the catalog over HTTP, for anyone: keyset pages, search, filters, stable
sorts, which products each caller sees, and reading one product."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from orderdesk.app import create_app
from orderdesk.container import Container
from orderdesk.core.pagination import encode_cursor
from tests.factories import (
    API,
    Headers,
    create_product,
    new_sku,
    product_body,
)
from tests.helpers import all_pages, problem

PRODUCTS = f"{API}/products"


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def flat(pages: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page]


# --- browsing -------------------------------------------------------------------------


async def test_anyone_can_list_products_without_signing_in(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff)

    response = await client.get(PRODUCTS)

    assert response.status_code == 200
    body = response.json()
    assert ids(body["items"]) == [product["id"]]
    assert body["next_cursor"] is None


async def test_listed_product_has_the_wire_shape(client: httpx.AsyncClient, staff: Headers) -> None:
    sent = product_body(name="Cap", amount=1899, currency="USD", stock=7, description="Cotton")
    created = (await client.post(PRODUCTS, json=sent, headers=staff)).json()

    item = (await client.get(PRODUCTS)).json()["items"][0]

    assert item["id"] == created["id"]
    assert item["sku"] == sent["sku"]
    assert item["name"] == "Cap"
    assert item["description"] == "Cotton"
    assert item["price"] == {"amount": 1899, "currency": "USD"}
    assert item["stock"] == 7
    assert item["is_active"] is True
    assert item["version"] == 1


async def test_pages_follow_the_cursor_through_every_product_once_in_creation_order(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    created = [await create_product(client, staff) for _ in range(5)]

    pages = await all_pages(client, PRODUCTS, params={"limit": 2})

    assert [len(page) for page in pages] == [2, 2, 1]
    assert ids(flat(pages)) == [product["id"] for product in created]


async def test_page_that_ends_exactly_at_the_last_product_has_no_next_cursor(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    for _ in range(2):
        await create_product(client, staff)

    body = (await client.get(PRODUCTS, params={"limit": 2})).json()

    assert len(body["items"]) == 2
    assert body["next_cursor"] is None


async def test_cursor_from_another_sort_order_is_rejected(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    for _ in range(2):
        await create_product(client, staff)
    cursor = (await client.get(PRODUCTS, params={"limit": 1})).json()["next_cursor"]

    response = await client.get(PRODUCTS, params={"cursor": cursor, "sort": "price"})

    assert response.status_code == 422
    assert problem(response)["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"cursor": "not-a-cursor!"}, id="cursor-the-api-did-not-issue"),
        pytest.param({"currency": "ZZZ"}, id="currency-not-iso-4217"),
        pytest.param({"sort": "stock"}, id="unknown-sort"),
    ],
)
async def test_a_list_query_the_api_does_not_take_is_rejected(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get(PRODUCTS, params=params)

    assert response.status_code == 422


SOME_ID = "0190f5f0-0000-7000-8000-000000000000"


@pytest.fixture
async def json_logging_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The test app, but logging in the production (JSON) format: the console format
    renders an unhandled error's traceback with every frame's locals, which takes
    about half a minute of CPU per error."""
    app = create_app(
        container.settings.model_copy(update={"log_format": "json"}), container=container
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("price", {"s": "price", "k": "abc", "id": SOME_ID}),
        ("price", {"s": "price", "k": [1], "id": SOME_ID}),
        ("price", {"s": "price", "k": 10**30, "id": SOME_ID}),
        ("name", {"s": "name", "k": 123, "id": SOME_ID}),
        ("created", {"s": "created", "k": None, "id": 5}),
        ("created", {"s": "created", "k": None, "id": [1]}),
    ],
    ids=["price-text", "price-list", "price-huge", "name-number", "id-number", "id-list"],
)
async def test_forged_cursor_is_rejected_as_invalid_input(
    client: httpx.AsyncClient,
    json_logging_client: httpx.AsyncClient,
    staff: Headers,
    sort: str,
    key: dict[str, Any],
) -> None:
    # Well-formed base64 JSON, but not a key this API issues for that sort order.
    for amount in (100, 200):
        await create_product(client, staff, amount=amount)

    response = await json_logging_client.get(
        PRODUCTS, params={"sort": sort, "cursor": encode_cursor(key, kind="products")}
    )

    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, 201])
async def test_limit_out_of_range_is_rejected(client: httpx.AsyncClient, limit: int) -> None:
    response = await client.get(PRODUCTS, params={"limit": limit})

    assert response.status_code == 422


async def test_search_matches_the_name_whatever_the_case(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    mug = await create_product(client, staff, name="Blue Enamel Mug")
    await create_product(client, staff, name="Baseball cap")

    items = (await client.get(PRODUCTS, params={"q": "enamel"})).json()["items"]

    assert ids(items) == [mug["id"]]


async def test_search_matches_the_sku(client: httpx.AsyncClient, staff: Headers) -> None:
    tee = await create_product(client, staff, sku=new_sku("TEE-XL"), name="Shirt")
    await create_product(client, staff, sku=new_sku("MUG"), name="Mug")

    items = (await client.get(PRODUCTS, params={"q": "tee-xl"})).json()["items"]

    assert ids(items) == [tee["id"]]


async def test_search_treats_like_wildcards_literally(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    sale = await create_product(client, staff, name="Mug 50% off")
    await create_product(client, staff, name="Mug 500 pack")
    underscored = await create_product(client, staff, name="tote_bag")
    await create_product(client, staff, name="tote bag")

    percent = (await client.get(PRODUCTS, params={"q": "50%"})).json()["items"]
    underscore = (await client.get(PRODUCTS, params={"q": "e_b"})).json()["items"]

    assert ids(percent) == [sale["id"]]
    assert ids(underscore) == [underscored["id"]]


async def test_customers_never_see_inactive_products(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers
) -> None:
    active = await create_product(client, staff, is_active=True)
    await create_product(client, staff, is_active=False)

    listed = (await client.get(PRODUCTS, headers=shopper)).json()["items"]
    asked = (await client.get(PRODUCTS, params={"is_active": False}, headers=shopper)).json()

    assert ids(listed) == [active["id"]]
    assert ids(asked["items"]) == [active["id"]]


async def test_anonymous_visitors_never_see_inactive_products(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    await create_product(client, staff, is_active=False)

    body = (await client.get(PRODUCTS, params={"is_active": False})).json()

    assert body["items"] == []


async def test_staff_see_inactive_products_alongside_active_ones(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    active = await create_product(client, staff, is_active=True)
    inactive = await create_product(client, staff, is_active=False)

    items = (await client.get(PRODUCTS, headers=staff)).json()["items"]

    assert ids(items) == [active["id"], inactive["id"]]


async def test_staff_can_list_only_inactive_products(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    await create_product(client, staff, is_active=True)
    inactive = await create_product(client, staff, is_active=False)

    items = (await client.get(PRODUCTS, params={"is_active": False}, headers=staff)).json()

    assert ids(items["items"]) == [inactive["id"]]


async def test_price_range_filter_includes_both_bounds(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    by_amount = {
        amount: await create_product(client, staff, amount=amount)
        for amount in (99, 100, 150, 200, 201)
    }

    items = (await client.get(PRODUCTS, params={"min_price": 100, "max_price": 200})).json()

    assert ids(items["items"]) == [by_amount[a]["id"] for a in (100, 150, 200)]


async def test_currency_filter_lists_only_that_currency(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    await create_product(client, staff, currency="EUR")
    usd = await create_product(client, staff, currency="USD")

    items = (await client.get(PRODUCTS, params={"currency": "USD"})).json()["items"]

    assert ids(items) == [usd["id"]]


async def test_sort_by_name_breaks_ties_by_id_across_pages(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    # Created out of name order, with a tie on each side of every page boundary.
    made = [
        await create_product(client, staff, name=name)
        for name in ("pear", "apple", "pear", "apple", "fig", "pear")
    ]
    by_name = sorted(made, key=lambda product: (product["name"], product["id"]))

    pages = await all_pages(client, PRODUCTS, params={"sort": "name", "limit": 2})

    assert ids(flat(pages)) == ids(by_name)


async def test_sort_by_price_breaks_ties_by_id_across_pages(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    made = [
        await create_product(client, staff, amount=amount)
        for amount in (500, 100, 500, 100, 300, 500, 100)
    ]
    by_price = sorted(made, key=lambda product: (product["price"]["amount"], product["id"]))

    pages = await all_pages(client, PRODUCTS, params={"sort": "price", "limit": 1})

    assert ids(flat(pages)) == ids(by_price)


async def test_sort_by_price_with_filters_keeps_filtering_on_later_pages(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    made = [
        await create_product(client, staff, amount=amount, currency=currency)
        for amount, currency in [(300, "EUR"), (100, "USD"), (200, "EUR"), (100, "EUR")]
    ]
    euros = sorted(
        (p for p in made if p["price"]["currency"] == "EUR"),
        key=lambda product: (product["price"]["amount"], product["id"]),
    )

    pages = await all_pages(
        client, PRODUCTS, params={"sort": "price", "currency": "EUR", "limit": 1}
    )

    assert ids(flat(pages)) == ids(euros)


# --- one product --------------------------------------------------------------------


async def test_reading_a_product_carries_its_version_as_etag(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff)

    response = await client.get(f"{PRODUCTS}/{product['id']}")

    assert response.status_code == 200
    assert response.json()["id"] == product["id"]
    assert response.headers["ETag"] == '"1"'


async def test_unknown_product_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PRODUCTS}/0190f5f0-0000-7000-8000-000000000000")

    assert response.status_code == 404
    assert problem(response)["code"] == "product_not_found"


async def test_inactive_product_is_404_for_customers(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers
) -> None:
    product = await create_product(client, staff, is_active=False)

    as_customer = await client.get(f"{PRODUCTS}/{product['id']}", headers=shopper)
    as_visitor = await client.get(f"{PRODUCTS}/{product['id']}")

    assert as_customer.status_code == 404
    assert as_visitor.status_code == 404


async def test_inactive_product_is_readable_by_staff(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, is_active=False)

    response = await client.get(f"{PRODUCTS}/{product['id']}", headers=staff)

    assert response.status_code == 200
    assert response.json()["is_active"] is False

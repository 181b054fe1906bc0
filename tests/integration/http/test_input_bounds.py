"""Bounds over HTTP on both databases: order totals past the money limit, signed
tokens with mistyped claims, import files past their limits or without rows, cursors
used on another list, and stock moves that must show in `updated_at`."""

from __future__ import annotations

import csv
from typing import Any

import httpx
import pytest

from orderdesk.catalog.importing import MAX_JSON_DEPTH
from orderdesk.container import Container
from orderdesk.core.money import MAX_AMOUNT
from orderdesk.core.settings import Settings
from tests.factories import (
    API,
    Headers,
    create_product,
    lines,
    new_sku,
    orders_count,
    place_order,
    post_order,
    products_count,
    read_product,
    register,
    stock_of,
    stored_product,
)
from tests.helpers import access_claims, problem, sign_claims

PRODUCTS = f"{API}/products"
IMPORT = f"{PRODUCTS}/import"
ME = f"{API}/users/me"
HALF_OVER = MAX_AMOUNT * 6 // 10  # 6·10¹¹: twice it passes the limit


# --- order totals ----------------------------------------------------------------------


@pytest.mark.parametrize("split", ["one-line", "two-lines"])
async def test_an_order_total_over_the_money_limit_is_a_422_and_reserves_nothing(
    client: httpx.AsyncClient,
    container: Container,
    staff: Headers,
    shopper: Headers,
    split: str,
) -> None:
    first = await create_product(client, staff, amount=HALF_OVER, stock=5)
    second = await create_product(client, staff, amount=HALF_OVER, stock=5)
    wanted = [(first["id"], 2)] if split == "one-line" else [(first["id"], 1), (second["id"], 1)]

    response = await post_order(client, shopper, lines(*wanted))

    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "order_total_too_large"
    assert [await stock_of(container, p["id"]) for p in (first, second)] == [5, 5]
    assert await orders_count(container) == 0


async def test_an_order_total_at_the_money_limit_is_placed(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers
) -> None:
    product = await create_product(client, staff, amount=MAX_AMOUNT // 2, stock=5)

    order = await place_order(client, shopper, (product["id"], 2))

    assert order["total"]["amount"] == MAX_AMOUNT


# --- signed tokens with claims of the wrong type or range -------------------------------

BAD_CLAIMS: dict[str, dict[str, Any]] = {
    "exp-huge": {"exp": 1e20},
    "exp-a-string": {"exp": "x"},
    "sid-a-number": {"sid": 123},
    "sid-not-a-uuid": {"sid": "s"},
    "sub-a-number": {"sub": 7},
    "ver-a-string": {"ver": "0"},
    "ver-a-float": {"ver": 0.5},
    "ver-a-bool": {"ver": False},
    "ver-huge": {"ver": 10**30},
    "role-a-number": {"role": 3},
    "role-unknown": {"role": "root"},
}


def signed(settings: Settings, user_id: str, **overrides: Any) -> str:
    claims = access_claims(settings, **{"sub": user_id, **overrides})
    return sign_claims(claims, settings.secret_key.get_secret_value())


@pytest.mark.parametrize("case", sorted(BAD_CLAIMS))
async def test_a_signed_token_with_mistyped_claims_is_a_401(
    client: httpx.AsyncClient, settings: Settings, case: str
) -> None:
    user = await register(client)
    token = signed(settings, user["id"], **BAD_CLAIMS[case])

    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401, response.text
    assert problem(response)["code"] == "invalid_token"


# --- imports ---------------------------------------------------------------------------

CSV_HEADER = "sku,name,description,price_amount,currency,stock,is_active\n"


async def post_import(
    client: httpx.AsyncClient, headers: Headers, content: str, content_type: str
) -> httpx.Response:
    return await client.post(
        IMPORT, content=content.encode(), headers={**headers, "Content-Type": content_type}
    )


async def test_a_csv_field_over_the_field_limit_is_a_422_naming_its_line(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    before = await products_count(container)
    huge = "x" * (csv.field_size_limit() + 1)
    content = CSV_HEADER + f"{new_sku()},Mug,,1,EUR,1,\n{new_sku()},Mug,{huge},1,EUR,1,\n"

    response = await post_import(client, staff, content, "text/csv")

    assert response.status_code == 422, response.text
    body = problem(response)
    assert body["code"] == "import_rejected"
    assert [error["line"] for error in body["errors"]] == [3]
    assert await products_count(container) == before


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
async def test_a_deeply_nested_json_line_is_a_422_naming_its_line(
    client: httpx.AsyncClient, container: Container, staff: Headers, depth: int
) -> None:
    before = await products_count(container)
    good = f'{{"sku": "{new_sku()}", "name": "Mug", "price_amount": 1, "currency": "EUR"}}'
    deep = "[" * depth + "]" * depth

    response = await post_import(client, staff, f"{good}\n{deep}\n", "application/x-ndjson")

    assert response.status_code == 422, response.text
    assert [error["line"] for error in problem(response)["errors"]] == [2]
    assert await products_count(container) == before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("", "text/csv"),
        (CSV_HEADER, "text/csv"),
        ("[]", "text/csv"),
        ("\n", "application/x-ndjson"),
    ],
    ids=["csv-empty", "csv-header-only", "csv-brackets", "ndjson-blank"],
)
async def test_an_import_without_rows_is_a_422(
    client: httpx.AsyncClient, staff: Headers, content: str, content_type: str
) -> None:
    response = await post_import(client, staff, content, content_type)

    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "import_empty"


# --- cursors belong to their list --------------------------------------------------------


async def test_a_cursor_from_one_list_is_a_422_on_another(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    for _ in range(2):
        await register(client)
    users_cursor = (await client.get(f"{API}/users", params={"limit": 1}, headers=staff)).json()[
        "next_cursor"
    ]
    assert users_cursor is not None

    response = await client.get(f"{API}/orders", params={"cursor": users_cursor}, headers=staff)

    assert response.status_code == 422, response.text
    assert {error["field"] for error in problem(response)["errors"]} == {"cursor"}
    same_list = await client.get(f"{API}/users", params={"cursor": users_cursor}, headers=staff)
    assert same_list.status_code == 200


# --- stock moves are changes: version, ETag and updated_at -----------------------------


async def test_reserving_and_releasing_stock_moves_updated_at(
    client: httpx.AsyncClient, container: Container, staff: Headers, shopper: Headers
) -> None:
    product = await create_product(client, staff, stock=5)
    created = await stored_product(container, product["id"])

    order = await place_order(client, shopper, (product["id"], 2))
    reserved = await stored_product(container, product["id"])
    cancelled = await client.post(f"{API}/orders/{order['id']}/cancel", headers=shopper)
    assert cancelled.status_code == 200, cancelled.text
    released = await stored_product(container, product["id"])

    assert (reserved.version, released.version) == (2, 3)
    assert created.updated_at < reserved.updated_at < released.updated_at
    public = await read_product(client, product["id"])
    assert public["updated_at"] == released.updated_at.isoformat().replace("+00:00", "Z")


async def test_an_import_update_moves_updated_at(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    product = await create_product(client, staff, stock=5)
    created = await stored_product(container, product["id"])
    row = f"{product['sku']},Mug,,1299,EUR,9,true\n"

    response = await post_import(client, staff, CSV_HEADER + row, "text/csv")

    assert response.status_code == 200, response.text
    updated = await stored_product(container, product["id"])
    assert (updated.stock, updated.version) == (9, 2)
    assert updated.updated_at > created.updated_at

"""Request schemas are as strict as the server, and the server as strict as its
schemas: what the document forbids is refused, what it allows is accepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import (
    API,
    STRONG_PASSWORD,
    Headers,
    create_product,
    idempotency,
    lines,
    product_body,
    read_product,
    unique_email,
)
from tests.helpers import problem


def fields_of(response: httpx.Response) -> dict[str, str]:
    return {error["field"]: error["type"] for error in problem(response)["errors"]}


@pytest.mark.parametrize("quantity", ["2", True, 2.5])
async def test_a_quantity_must_be_a_json_integer(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers, quantity: Any
) -> None:
    product = await create_product(client, staff)

    response = await client.post(
        f"{API}/orders", json=lines((product["id"], quantity)), headers=idempotency(shopper)
    )

    assert response.status_code == 422
    assert "lines.0.quantity" in fields_of(response)
    assert (await read_product(client, product["id"]))["stock"] == product["stock"]


async def test_an_integral_number_is_an_integer(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers
) -> None:
    product = await create_product(client, staff, stock=5)

    response = await client.post(
        f"{API}/orders", json=lines((product["id"], 2.0)), headers=idempotency(shopper)
    )

    assert response.status_code == 201, response.text
    assert response.json()["lines"][0]["quantity"] == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("is_active", 1), ("is_active", "true"), ("stock", "7"), ("price", {"amount": "5"})],
)
async def test_product_numbers_and_flags_take_json_types_only(
    client: httpx.AsyncClient, staff: Headers, field: str, value: Any
) -> None:
    body = product_body()
    if field == "price":
        body["price"] = {**body["price"], **value}
    else:
        body[field] = value

    response = await client.post(f"{API}/products", json=body, headers=staff)

    assert response.status_code == 422
    assert any(name.startswith(field) for name in fields_of(response))


async def test_a_partial_update_refuses_null(client: httpx.AsyncClient, staff: Headers) -> None:
    product = await create_product(client, staff, name="Mug")

    response = await client.patch(
        f"{API}/products/{product['id']}",
        json={"name": None},
        headers={**staff, "If-Match": '"1"'},
    )

    assert response.status_code == 422
    assert problem(response)["code"] == "validation_failed"
    assert "name" in fields_of(response)
    assert (await read_product(client, product["id"]))["name"] == "Mug"


async def test_names_are_trimmed_and_must_not_be_blank(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    trimmed = await create_product(client, staff, name="  Mug  ")
    blank = await client.post(f"{API}/products", json=product_body(name="   "), headers=staff)

    assert trimmed["name"] == "Mug"
    assert blank.status_code == 422
    assert fields_of(blank) == {"name": "blank"}


async def test_a_sku_with_spaces_around_it_is_refused_not_trimmed(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    response = await client.post(f"{API}/products", json=product_body(sku=" ABC-1"), headers=staff)

    assert response.status_code == 422
    assert "sku" in fields_of(response)


async def test_an_email_on_a_reserved_domain_is_named_as_such(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/register",
        json={"email": "someone@example.test", "password": STRONG_PASSWORD, "full_name": "A"},
    )

    assert response.status_code == 422
    assert fields_of(response) == {"email": "email_reserved_domain"}


async def test_an_email_over_254_characters_is_refused(client: httpx.AsyncClient) -> None:
    email = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".com"
    assert len(email) > 254

    response = await client.post(
        f"{API}/auth/register",
        json={"email": email, "password": STRONG_PASSWORD, "full_name": "A"},
    )

    assert response.status_code == 422
    assert "email" in fields_of(response)


@pytest.mark.parametrize("value", ["0.5", "1700000000", "2026-01-31"])
async def test_order_time_filters_take_rfc_3339_text_only(
    client: httpx.AsyncClient, shopper: Headers, value: str
) -> None:
    response = await client.get(f"{API}/orders", params={"created_before": value}, headers=shopper)

    assert response.status_code == 422
    assert "query.created_before" in fields_of(response)


async def test_the_sign_in_form_refuses_an_empty_username_and_other_grants(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    empty = await client.post(f"{API}/auth/token", data={"username": "", "password": "x"})
    other_grant = await client.post(
        f"{API}/auth/token",
        data={"username": email, "password": "x", "grant_type": "client_credentials"},
    )

    assert empty.status_code == 422
    assert "username" in fields_of(empty)
    assert other_grant.status_code == 422
    assert "grant_type" in fields_of(other_grant)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("created_after", "9999-12-31T23:59:59-23:59"),
        ("created_before", "0001-01-01T00:00:00+23:59"),
    ],
)
async def test_a_time_filter_past_what_utc_can_hold_is_422(
    client: httpx.AsyncClient, shopper: Headers, name: str, value: str
) -> None:
    response = await client.get(f"{API}/orders", params={name: value}, headers=shopper)

    assert response.status_code == 422
    assert f"query.{name}" in fields_of(response)

"""The one rule for text, over HTTP on both databases: a NUL, another control
character or a lone surrogate in any string that enters is a 422 naming the field,
never a 500 from the driver, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from orderdesk.container import Container
from tests.factories import (
    API,
    STRONG_PASSWORD,
    Headers,
    create_product,
    new_sku,
    product_body,
    products_count,
    register,
    stored_product,
    unique_email,
    users_count,
)
from tests.helpers import error_fields, problem

REGISTER = f"{API}/auth/register"
TOKEN = f"{API}/auth/token"
SESSION = f"{API}/auth/session"
PRODUCTS = f"{API}/products"
IMPORT = f"{PRODUCTS}/import"
# Sent as JSON escapes, so the server's parser, not the client, makes the character.
BAD_JSON_TEXT = {
    "nul": "\\u0000",
    "escape": "\\u001b[31m",
    "bell": "\\u0007",
    "lone-surrogate": "\\ud800",
    "noncharacter": "\\uffff",
}
BAD_FORM_TEXT = {"nul": "\x00", "escape": "\x1b[31m", "newline": "\n", "delete": "\x7f"}


def json_with(body: dict[str, Any], field: str, escape: str) -> bytes:
    """`body` as JSON with `escape` (a JSON escape sequence) inside `field`'s text."""
    marker = "@@TEXT@@"
    text = json.dumps({**body, field: f"Tea{marker}pot"})
    return text.replace(marker, escape).encode()


async def post_json(
    client: httpx.AsyncClient, path: str, content: bytes, headers: Headers | None = None
) -> httpx.Response:
    headers = {**(headers or {}), "Content-Type": "application/json"}
    return await client.post(path, content=content, headers=headers)


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = problem(response)
    assert body["code"] == "validation_failed"
    assert field in error_fields(body), body


@pytest.fixture
async def users_unchanged(container: Container) -> AsyncIterator[None]:
    before = await users_count(container)
    yield
    assert await users_count(container) == before, "a refused request wrote a user"


@pytest.fixture
async def products_unchanged(container: Container) -> AsyncIterator[None]:
    before = await products_count(container)
    yield
    assert await products_count(container) == before, "a refused request wrote a product"


# --- sign-up and sign-in -----------------------------------------------------------------


@pytest.mark.usefixtures("users_unchanged")
@pytest.mark.parametrize("kind", sorted(BAD_JSON_TEXT))
@pytest.mark.parametrize("field", ["email", "password", "full_name"])
async def test_sign_up_refuses_forbidden_characters_naming_the_field(
    client: httpx.AsyncClient, field: str, kind: str
) -> None:
    body = {"email": unique_email(), "password": STRONG_PASSWORD, "full_name": "Ada"}

    response = await post_json(client, REGISTER, json_with(body, field, BAD_JSON_TEXT[kind]))

    assert_refused(response, field)


@pytest.mark.parametrize("path", [TOKEN, SESSION])
@pytest.mark.parametrize("kind", sorted(BAD_FORM_TEXT))
@pytest.mark.parametrize("field", ["username", "password"])
async def test_sign_in_forms_refuse_forbidden_characters_naming_the_field(
    client: httpx.AsyncClient, path: str, field: str, kind: str
) -> None:
    user = await register(client)
    form = {"username": user["email"], "password": STRONG_PASSWORD}
    form[field] = form[field] + BAD_FORM_TEXT[kind]

    response = await client.post(path, data=form)

    assert_refused(response, field)


async def test_a_sign_in_password_over_the_maximum_is_refused_before_hashing(
    client: httpx.AsyncClient, container: Container
) -> None:
    user = await register(client)
    long_password = "x" * 1025
    hashed: list[str] = []
    verify = container.hasher.verify

    async def counting_verify(password: str, password_hash: str | None) -> Any:
        hashed.append(password)
        return await verify(password, password_hash)

    container.hasher.verify = counting_verify  # type: ignore[method-assign]
    try:
        response = await client.post(
            TOKEN, data={"username": user["email"], "password": long_password}
        )
    finally:
        del container.hasher.verify

    assert_refused(response, "password")
    assert hashed == []


async def test_the_sign_in_form_keeps_the_oauth2_fields(client: httpx.AsyncClient) -> None:
    user = await register(client)
    form = {
        "username": user["email"],
        "password": STRONG_PASSWORD,
        "grant_type": "password",
        "scope": "",
        "client_id": "docs",
        "client_secret": "unused",
    }

    assert (await client.post(TOKEN, data=form)).status_code == 200
    refused = await client.post(TOKEN, data={**form, "grant_type": "client_credentials"})
    assert_refused(refused, "grant_type")


# --- products --------------------------------------------------------------------------


@pytest.mark.usefixtures("products_unchanged")
@pytest.mark.parametrize("kind", sorted(BAD_JSON_TEXT))
@pytest.mark.parametrize("field", ["sku", "name", "description"])
async def test_product_create_refuses_forbidden_characters_naming_the_field(
    client: httpx.AsyncClient, staff: Headers, field: str, kind: str
) -> None:
    content = json_with(product_body(), field, BAD_JSON_TEXT[kind])

    assert_refused(await post_json(client, PRODUCTS, content, staff), field)


async def test_a_description_may_hold_tabs_and_line_breaks_a_name_may_not(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    created = await create_product(client, staff, description="Line one\r\n\tLine two")
    assert created["description"] == "Line one\r\n\tLine two"

    response = await client.post(
        PRODUCTS, json=product_body(name="Line one\nLine two"), headers=staff
    )
    assert_refused(response, "name")


@pytest.mark.parametrize("kind", sorted(BAD_JSON_TEXT))
@pytest.mark.parametrize("field", ["name", "description"])
async def test_product_update_refuses_forbidden_characters_and_changes_nothing(
    client: httpx.AsyncClient, container: Container, staff: Headers, field: str, kind: str
) -> None:
    product = await create_product(client, staff, name="Mug", description="Plain")
    content = json_with({}, field, BAD_JSON_TEXT[kind])

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}",
        content=content,
        headers={**staff, "Content-Type": "application/json", "If-Match": '"1"'},
    )

    assert_refused(response, field)
    stored = await stored_product(container, product["id"])
    assert (stored.name, stored.description, stored.version) == ("Mug", "Plain", 1)


@pytest.mark.parametrize("q", ["\x00", "mug\x00", "\x1b", "\x7f"])
async def test_a_search_with_a_control_character_is_a_422_on_q(
    client: httpx.AsyncClient, staff: Headers, q: str
) -> None:
    await create_product(client, staff, name="Mug")

    response = await client.get(PRODUCTS, params={"q": q})

    assert_refused(response, "query.q")


@pytest.mark.parametrize("header", ["If-Match", "Idempotency-Key"])
async def test_headers_with_control_characters_are_a_422_naming_the_header(
    client: httpx.AsyncClient, staff: Headers, header: str
) -> None:
    product = await create_product(client, staff)
    path, method = (
        (f"{PRODUCTS}/{product['id']}", "PATCH")
        if header == "If-Match"
        else (f"{API}/orders", "POST")
    )
    raw = [(name.encode(), value.encode()) for name, value in staff.items()]
    raw.append((header.encode(), b'"1"\x01'))

    response = await client.request(method, path, json={"stock": 1}, headers=raw)

    assert_refused(response, f"header.{header}")


# --- imports -----------------------------------------------------------------------------

CSV_HEADER = "sku,name,description,price_amount,currency,stock,is_active\n"


@pytest.mark.usefixtures("products_unchanged")
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\ufffe"])
async def test_a_csv_line_with_a_control_character_is_refused_naming_line_and_field(
    client: httpx.AsyncClient, staff: Headers, char: str
) -> None:
    content = CSV_HEADER + f"{new_sku()},Mug,,100,EUR,1,true\n{new_sku()},Cup{char},,1,EUR,1,\n"

    response = await client.post(
        IMPORT, content=content.encode(), headers={**staff, "Content-Type": "text/csv"}
    )

    assert response.status_code == 422, response.text
    body = problem(response)
    assert body["code"] == "import_rejected"
    assert [(error["line"], error["field"]) for error in body["errors"]] == [(3, "name")]


@pytest.mark.usefixtures("products_unchanged")
@pytest.mark.parametrize("kind", sorted(BAD_JSON_TEXT))
async def test_an_ndjson_line_with_a_forbidden_character_is_refused_naming_line_and_field(
    client: httpx.AsyncClient, staff: Headers, kind: str
) -> None:
    good = json.dumps(product_body())
    bad = json_with(product_body(), "description", BAD_JSON_TEXT[kind]).decode()

    response = await client.post(
        IMPORT,
        content=f"{good}\n{bad}\n".encode(),
        headers={**staff, "Content-Type": "application/x-ndjson"},
    )

    assert response.status_code == 422, response.text
    body = problem(response)
    assert body["code"] == "import_rejected"
    assert [(error["line"], error["field"]) for error in body["errors"]] == [(2, "description")]

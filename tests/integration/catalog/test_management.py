"""Managing the catalog over HTTP, for staff only: create, update (If-Match), soft
delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from tests.factories import (
    API,
    Headers,
    create_product,
    product_body,
    read_product,
    staff_headers,
    stored_product,
)
from tests.helpers import problem

PRODUCTS = f"{API}/products"


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


# --- managing -------------------------------------------------------------------------


async def test_staff_can_create_a_product(client: httpx.AsyncClient, staff: Headers) -> None:
    sent = product_body(name="Canvas tote", amount=1499, stock=50)

    response = await client.post(PRODUCTS, json=sent, headers=staff)

    assert response.status_code == 201
    body = response.json()
    assert response.headers["ETag"] == '"1"'
    assert (body["sku"], body["name"], body["stock"]) == (sent["sku"], "Canvas tote", 50)
    assert body["price"] == {"amount": 1499, "currency": "EUR"}
    assert (await read_product(client, body["id"]))["sku"] == sent["sku"]


async def test_admin_can_manage_the_catalog_too(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin = await staff_headers(client, container, role=Role.ADMIN)

    response = await client.post(PRODUCTS, json=product_body(), headers=admin)

    assert response.status_code == 201


async def test_duplicate_sku_is_409_sku_taken(client: httpx.AsyncClient, staff: Headers) -> None:
    first = await create_product(client, staff)

    response = await client.post(PRODUCTS, json=product_body(sku=first["sku"]), headers=staff)

    assert response.status_code == 409
    assert problem(response)["code"] == "sku_taken"


async def test_sku_of_a_deleted_product_stays_taken(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    first = await create_product(client, staff)
    await client.delete(f"{PRODUCTS}/{first['id']}", headers=staff)

    response = await client.post(PRODUCTS, json=product_body(sku=first["sku"]), headers=staff)

    assert response.status_code == 409
    assert problem(response)["code"] == "sku_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", {"amount": 12.5, "currency": "EUR"}),
        ("price", {"amount": -1, "currency": "EUR"}),
        ("price", {"amount": 100, "currency": "ZZZ"}),
        ("stock", -1),
        ("name", ""),
        ("sku", "has space"),
    ],
)
async def test_invalid_product_is_rejected(
    client: httpx.AsyncClient, staff: Headers, field: str, value: Any
) -> None:
    response = await client.post(PRODUCTS, json={**product_body(), field: value}, headers=staff)

    assert response.status_code == 422
    assert any(error["field"].startswith(field) for error in problem(response)["errors"])


async def test_product_cannot_be_created_with_server_owned_fields(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    response = await client.post(PRODUCTS, json={**product_body(), "version": 7}, headers=staff)

    assert response.status_code == 422


async def test_customer_cannot_create_a_product(
    client: httpx.AsyncClient, shopper: Headers
) -> None:
    response = await client.post(PRODUCTS, json=product_body(), headers=shopper)

    assert response.status_code == 403
    assert problem(response)["code"] == "forbidden"


async def test_anonymous_visitor_cannot_create_a_product(client: httpx.AsyncClient) -> None:
    response = await client.post(PRODUCTS, json=product_body())

    assert response.status_code == 401


async def test_customer_cannot_update_a_product(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers
) -> None:
    product = await create_product(client, staff, name="Mug")

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}",
        json={"name": "Hacked"},
        headers={**shopper, "If-Match": '"1"'},
    )

    assert response.status_code == 403
    assert (await read_product(client, product["id"]))["name"] == "Mug"


async def test_customer_cannot_delete_a_product(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers
) -> None:
    product = await create_product(client, staff)

    response = await client.delete(f"{PRODUCTS}/{product['id']}", headers=shopper)

    assert response.status_code == 403
    assert (await client.get(f"{PRODUCTS}/{product['id']}")).status_code == 200


async def test_update_with_the_current_version_applies_and_bumps_the_version(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug", amount=1000)

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}",
        json={"name": "Big mug", "price": {"amount": 1500, "currency": "EUR"}},
        headers={**staff, "If-Match": '"1"'},
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    body = response.json()
    assert (body["name"], body["price"]["amount"], body["version"]) == ("Big mug", 1500, 2)
    reread = await client.get(f"{PRODUCTS}/{product['id']}")
    assert (reread.json()["name"], reread.headers["ETag"]) == ("Big mug", '"2"')


async def test_update_leaves_fields_it_does_not_mention_alone(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug", amount=1000, stock=4)

    await client.patch(
        f"{PRODUCTS}/{product['id']}", json={"stock": 9}, headers={**staff, "If-Match": '"1"'}
    )

    after = await read_product(client, product["id"])
    assert (after["name"], after["price"]["amount"], after["stock"]) == ("Mug", 1000, 9)


async def test_update_with_a_stale_version_is_412_and_changes_nothing(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug")
    path = f"{PRODUCTS}/{product['id']}"
    await client.patch(path, json={"name": "Cup"}, headers={**staff, "If-Match": '"1"'})

    response = await client.patch(path, json={"name": "Jug"}, headers={**staff, "If-Match": '"1"'})

    assert response.status_code == 412
    assert problem(response)["code"] == "version_mismatch"
    after = await read_product(client, product["id"])
    assert (after["name"], after["version"]) == ("Cup", 2)


async def test_update_without_if_match_is_428(client: httpx.AsyncClient, staff: Headers) -> None:
    product = await create_product(client, staff, name="Mug")

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}", json={"name": "Cup"}, headers=staff
    )

    assert response.status_code == 428
    assert problem(response)["code"] == "if_match_required"
    assert (await read_product(client, product["id"]))["name"] == "Mug"


async def test_update_with_a_malformed_if_match_is_refused(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug")

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}", json={"name": "Cup"}, headers={**staff, "If-Match": "*"}
    )

    assert response.status_code == 412
    assert (await read_product(client, product["id"]))["name"] == "Mug"


async def test_update_setting_a_required_field_to_null_is_422(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug")

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}", json={"name": None}, headers={**staff, "If-Match": '"1"'}
    )

    assert response.status_code == 422
    assert (await read_product(client, product["id"]))["name"] == "Mug"


async def test_updating_an_unknown_product_is_404(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    response = await client.patch(
        f"{PRODUCTS}/0190f5f0-0000-7000-8000-000000000000",
        json={"name": "Cup"},
        headers={**staff, "If-Match": '"1"'},
    )

    assert response.status_code == 404


async def test_deleted_product_is_404_for_everyone(
    client: httpx.AsyncClient, staff: Headers, shopper: Headers
) -> None:
    product = await create_product(client, staff)

    deleted = await client.delete(f"{PRODUCTS}/{product['id']}", headers=staff)

    assert deleted.status_code == 204
    for headers in (staff, shopper, {}):
        response = await client.get(f"{PRODUCTS}/{product['id']}", headers=headers)
        assert response.status_code == 404


async def test_deleted_product_is_not_listed_even_for_staff(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    kept = await create_product(client, staff)
    gone = await create_product(client, staff)

    await client.delete(f"{PRODUCTS}/{gone['id']}", headers=staff)

    assert ids((await client.get(PRODUCTS, headers=staff)).json()["items"]) == [kept["id"]]
    assert ids((await client.get(PRODUCTS)).json()["items"]) == [kept["id"]]


async def test_delete_is_soft_the_row_is_kept(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    product = await create_product(client, staff)

    await client.delete(f"{PRODUCTS}/{product['id']}", headers=staff)

    row = await stored_product(container, product["id"])
    assert row.deleted_at is not None


async def test_deleted_product_cannot_be_updated_or_deleted_again(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff)
    path = f"{PRODUCTS}/{product['id']}"
    await client.delete(path, headers=staff)

    patched = await client.patch(path, json={"name": "x"}, headers={**staff, "If-Match": '"2"'})
    deleted = await client.delete(path, headers=staff)

    assert patched.status_code == 404
    assert deleted.status_code == 404


async def test_delete_with_a_stale_if_match_is_412_and_keeps_the_product(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff)
    path = f"{PRODUCTS}/{product['id']}"
    await client.patch(path, json={"name": "Cup"}, headers={**staff, "If-Match": '"1"'})

    response = await client.delete(path, headers={**staff, "If-Match": '"1"'})

    assert response.status_code == 412
    assert (await client.get(path)).status_code == 200

"""Bulk product import over HTTP (`POST /products/import`, CSV or NDJSON): all or
nothing, naming each bad line, re-imports updating and reviving by SKU."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from orderdesk.catalog.service import IMPORT_BATCH_SIZE
from orderdesk.container import Container
from tests.factories import (
    API,
    Headers,
    create_product,
    customer,
    new_sku,
    products_count,
    read_product,
)
from tests.helpers import problem

IMPORT = f"{API}/products/import"
CSV_TYPE = {"Content-Type": "text/csv"}
NDJSON_TYPE = {"Content-Type": "application/x-ndjson"}
HEADER = "sku,name,price_amount,currency,stock,is_active\n"


def csv_row(sku: str, name: str = "Mug", amount: int = 100, stock: int = 5) -> str:
    return f"{sku},{name},{amount},EUR,{stock},true\n"


async def by_sku(client: httpx.AsyncClient, headers: Headers, sku: str) -> dict[str, Any]:
    items = (await client.get(f"{API}/products", params={"q": sku}, headers=headers)).json()
    matches = [item for item in items["items"] if item["sku"] == sku]
    assert len(matches) == 1, items
    match: dict[str, Any] = matches[0]
    return match


async def post_import(
    client: httpx.AsyncClient, headers: Headers, content: str, content_type: Headers
) -> httpx.Response:
    return await client.post(IMPORT, content=content.encode(), headers={**headers, **content_type})


# --- over HTTP ----------------------------------------------------------------------


async def test_csv_import_creates_the_products(client: httpx.AsyncClient, staff: Headers) -> None:
    mug, cap = new_sku("MUG"), new_sku("CAP")
    content = HEADER + csv_row(mug, "Blue mug", 1299, 40) + csv_row(cap, "Cap", 1899, 3)

    response = await post_import(client, staff, content, CSV_TYPE)

    assert response.status_code == 200, response.text
    assert response.json() == {"rows": 2, "created": 2, "updated": 0}
    imported = await by_sku(client, staff, mug)
    assert (imported["name"], imported["stock"], imported["version"]) == ("Blue mug", 40, 1)
    assert imported["price"] == {"amount": 1299, "currency": "EUR"}
    assert (await by_sku(client, staff, cap))["name"] == "Cap"


async def test_ndjson_import_creates_products_from_flat_and_nested_rows(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    flat, nested = new_sku("FLAT"), new_sku("NEST")
    content = (
        json.dumps({"sku": flat, "name": "Flat", "price_amount": 100, "currency": "EUR"})
        + "\n"
        + json.dumps({"sku": nested, "name": "Nested", "price": {"amount": 250, "currency": "GBP"}})
        + "\n"
    )

    response = await post_import(client, staff, content, NDJSON_TYPE)

    assert response.status_code == 200, response.text
    assert response.json() == {"rows": 2, "created": 2, "updated": 0}
    assert (await by_sku(client, staff, nested))["price"] == {"amount": 250, "currency": "GBP"}


async def test_imported_inactive_products_stay_hidden_from_customers(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    sku = new_sku("HIDDEN")
    await post_import(client, staff, HEADER + f"{sku},Hidden,100,EUR,1,false\n", CSV_TYPE)

    visible = (await client.get(f"{API}/products", params={"q": sku})).json()["items"]

    assert visible == []
    assert (await by_sku(client, staff, sku))["is_active"] is False


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data"])
async def test_other_content_types_are_415(
    client: httpx.AsyncClient, container: Container, staff: Headers, content_type: str
) -> None:
    before = await products_count(container)

    response = await post_import(
        client, staff, HEADER + csv_row(new_sku()), {"Content-Type": content_type}
    )

    assert response.status_code == 415
    assert problem(response)["code"] == "unsupported_media_type"
    assert await products_count(container) == before


async def test_upload_without_a_content_type_is_415(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    response = await client.post(
        IMPORT, content=(HEADER + csv_row(new_sku())).encode(), headers=staff
    )

    assert response.status_code == 415


async def test_customer_cannot_import(client: httpx.AsyncClient, container: Container) -> None:
    _, shopper = await customer(client)
    before = await products_count(container)

    response = await post_import(client, shopper, HEADER + csv_row(new_sku()), CSV_TYPE)

    assert response.status_code == 403
    assert await products_count(container) == before


async def test_anonymous_visitor_cannot_import(client: httpx.AsyncClient) -> None:
    response = await post_import(client, {}, HEADER + csv_row(new_sku()), CSV_TYPE)

    assert response.status_code == 401


async def test_file_with_bad_rows_is_rejected_naming_each_bad_line_and_nothing_is_written(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    existing = await create_product(client, staff, name="Original", amount=500, stock=7)
    before = await products_count(container)
    content = (
        HEADER
        + csv_row(new_sku(), "Fine")  # line 2
        + csv_row(new_sku(), "")  # line 3: no name
        + csv_row(existing["sku"], "Renamed", 999, 1)  # line 4: a valid update
        + f"{new_sku()},Mug,100,ZZZ,1,true\n"  # line 5: not a currency
        + csv_row(new_sku(), "Fine too")  # line 6
    )

    response = await post_import(client, staff, content, CSV_TYPE)

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "import_rejected"
    assert {(error["line"], error["field"]) for error in body["errors"]} == {
        (3, "name"),
        (5, "price.currency"),
    }
    assert all(error["message"] for error in body["errors"])
    assert await products_count(container) == before
    unchanged = await read_product(client, existing["id"])
    assert (unchanged["name"], unchanged["version"]) == ("Original", 1)


async def test_ndjson_file_with_a_line_that_is_not_json_writes_nothing(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    before = await products_count(container)
    good = json.dumps({"sku": new_sku(), "name": "Mug", "price_amount": 1, "currency": "EUR"})
    content = f"{good}\n{{not json\n"

    response = await post_import(client, staff, content, NDJSON_TYPE)

    assert response.status_code == 422
    assert [(e["line"], e["field"]) for e in problem(response)["errors"]] == [(2, None)]
    assert await products_count(container) == before


async def test_duplicate_sku_within_a_file_rejects_the_file(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    before = await products_count(container)
    sku = new_sku()
    content = HEADER + csv_row(sku, "First") + csv_row(new_sku()) + csv_row(sku, "Second")

    response = await post_import(client, staff, content, CSV_TYPE)

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "import_rejected"
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(4, "sku")]
    assert await products_count(container) == before


async def test_file_that_is_not_utf8_is_rejected(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    before = await products_count(container)
    content = (HEADER + csv_row(new_sku(), "Caf\u00e9")).encode("latin-1")

    response = await client.post(IMPORT, content=content, headers={**staff, **CSV_TYPE})

    assert response.status_code == 422
    assert problem(response)["code"] == "import_rejected"
    assert await products_count(container) == before


async def test_reimport_updates_existing_products_and_bumps_their_version(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    sku = new_sku()
    await post_import(client, staff, HEADER + csv_row(sku, "Mug", 100, 5), CSV_TYPE)
    first = await by_sku(client, staff, sku)

    response = await post_import(client, staff, HEADER + csv_row(sku, "Big mug", 150, 9), CSV_TYPE)

    assert response.json() == {"rows": 1, "created": 0, "updated": 1}
    again = await by_sku(client, staff, sku)
    assert again["id"] == first["id"]
    assert (again["name"], again["price"]["amount"], again["stock"]) == ("Big mug", 150, 9)
    assert again["version"] == first["version"] + 1


async def test_reimport_of_a_product_made_over_the_api_bumps_its_etag(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug")

    await post_import(client, staff, HEADER + csv_row(product["sku"], "Cup"), CSV_TYPE)

    response = await client.get(f"{API}/products/{product['id']}")
    assert response.json()["name"] == "Cup"
    assert response.headers["ETag"] == '"2"'
    stale = await client.patch(
        f"{API}/products/{product['id']}",
        json={"name": "Jug"},
        headers={**staff, "If-Match": '"1"'},
    )
    assert stale.status_code == 412


async def test_import_counts_created_and_updated_rows_separately(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    old = [new_sku() for _ in range(2)]
    await post_import(client, staff, HEADER + "".join(csv_row(sku) for sku in old), CSV_TYPE)
    new = [new_sku() for _ in range(3)]

    response = await post_import(
        client, staff, HEADER + "".join(csv_row(sku) for sku in [*old, *new]), CSV_TYPE
    )

    assert response.json() == {"rows": 5, "created": 3, "updated": 2}


async def test_reimport_revives_a_soft_deleted_sku(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug")
    await client.delete(f"{API}/products/{product['id']}", headers=staff)

    response = await post_import(
        client, staff, HEADER + csv_row(product["sku"], "Mug II"), CSV_TYPE
    )

    assert response.json() == {"rows": 1, "created": 0, "updated": 1}
    revived = await client.get(f"{API}/products/{product['id']}")
    assert revived.status_code == 200
    assert revived.json()["name"] == "Mug II"
    listed = (await client.get(f"{API}/products")).json()["items"]
    assert product["id"] in [item["id"] for item in listed]


async def test_import_larger_than_one_batch_counts_every_row(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    rows = 2 * IMPORT_BATCH_SIZE + 500
    skus = [new_sku("BULK") for _ in range(rows)]
    before = await products_count(container)
    content = HEADER + "".join(csv_row(sku, "Bulk", 100 + n, 1) for n, sku in enumerate(skus))

    created = await post_import(client, staff, content, CSV_TYPE)
    updated = await post_import(client, staff, content.replace(",Bulk,", ",Bulk II,"), CSV_TYPE)

    assert created.json() == {"rows": rows, "created": rows, "updated": 0}
    assert updated.json() == {"rows": rows, "created": 0, "updated": rows}
    assert await products_count(container) == before + rows
    last = await by_sku(client, staff, skus[-1])
    assert (last["name"], last["price"]["amount"], last["version"]) == (
        "Bulk II",
        100 + rows - 1,
        2,
    )


async def test_header_only_file_is_an_empty_import_and_imports_nothing(
    client: httpx.AsyncClient, container: Container, staff: Headers
) -> None:
    # Issue 8: an empty import was a 200 that did nothing; it is a 422 now.
    before = await products_count(container)

    response = await post_import(client, staff, HEADER, CSV_TYPE)

    assert response.status_code == 422
    assert problem(response)["code"] == "import_empty"
    assert await products_count(container) == before

"""HTTP semantics the document promises: HEAD and OPTIONS, 405 with the right Allow,
bodies validated before preconditions, empty 204s, uncached tokens, offline docs."""

from __future__ import annotations

import re

import httpx

from orderdesk.container import Container
from tests.factories import (
    API,
    STRONG_PASSWORD,
    Headers,
    create_product,
    idempotency,
    lines,
    make_product,
    read_product,
    signed_up,
)
from tests.helpers import problem

PRODUCTS = f"{API}/products"


async def test_head_answers_like_get_without_a_body(
    client: httpx.AsyncClient, container: Container
) -> None:
    product = await make_product(container)
    path = f"{PRODUCTS}/{product.id}"

    got = await client.get(path)
    head = await client.head(path)

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["content-length"] == got.headers["content-length"]


async def test_options_lists_every_method_a_path_takes(
    client: httpx.AsyncClient, container: Container
) -> None:
    product = await make_product(container)

    response = await client.options(f"{PRODUCTS}/{product.id}")

    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, PATCH, DELETE, OPTIONS"


async def test_an_undeclared_method_is_405_with_every_allowed_method(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff)

    response = await client.put(f"{PRODUCTS}/{product['id']}", json={}, headers=staff)

    assert response.status_code == 405
    assert problem(response)["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD, PATCH, DELETE, OPTIONS"


async def test_a_static_path_beside_an_id_path_is_not_taken_for_an_id(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    response = await client.patch(f"{PRODUCTS}/import", json={}, headers=staff)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"


async def test_a_bad_body_is_reported_before_a_missing_if_match(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff, name="Mug")

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}", json={"stock": "many"}, headers=staff
    )

    assert response.status_code == 422
    assert problem(response)["code"] == "validation_failed"
    assert (await read_product(client, product["id"]))["name"] == "Mug"


async def test_a_bad_body_is_reported_before_a_stale_if_match(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff)

    response = await client.patch(
        f"{PRODUCTS}/{product['id']}",
        json={"stock": -1},
        headers={**staff, "If-Match": '"99"'},
    )

    assert response.status_code == 422


async def test_a_bad_order_body_is_reported_before_a_missing_idempotency_key(
    client: httpx.AsyncClient, shopper: Headers
) -> None:
    response = await client.post(f"{API}/orders", json={"lines": []}, headers=shopper)

    assert response.status_code == 422
    assert problem(response)["code"] == "validation_failed"


async def test_a_valid_order_without_an_idempotency_key_is_400(
    client: httpx.AsyncClient, container: Container, shopper: Headers
) -> None:
    product = await make_product(container)

    response = await client.post(f"{API}/orders", json=lines((str(product.id), 1)), headers=shopper)

    assert response.status_code == 400
    assert problem(response)["code"] == "idempotency_key_required"
    retried = await client.post(
        f"{API}/orders", json=lines((str(product.id), 1)), headers=idempotency(shopper)
    )
    assert retried.status_code == 201


async def test_a_body_that_is_not_utf8_json_is_400_malformed_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"{API}/auth/register",
        content=b"\xff\xfe{",
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert problem(response)["code"] == "malformed_body"


async def test_a_204_has_no_body_and_no_content_type(
    client: httpx.AsyncClient, staff: Headers
) -> None:
    product = await create_product(client, staff)

    response = await client.delete(f"{PRODUCTS}/{product['id']}", headers=staff)

    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers


async def test_answers_that_carry_tokens_are_not_cached(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client)

    issued = await client.post(
        f"{API}/auth/token", data={"username": user["email"], "password": STRONG_PASSWORD}
    )
    refreshed = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    session = await client.post(
        f"{API}/auth/session", data={"username": user["email"], "password": STRONG_PASSWORD}
    )

    for response in (issued, refreshed, session):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"


async def test_api_docs_load_their_assets_from_this_server(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        sources = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
        assert sources, page
        assert all(source.startswith("/") for source in sources), (page, sources)
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200, source
            assert len(asset.content) > 1000, source
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200

"""Listing users: who may, and cursor paging over every account exactly once."""

from __future__ import annotations

import httpx
import pytest

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from tests.factories import (
    bearer,
    register,
    signed_in_as,
    signed_up,
    users_count,
)
from tests.helpers import all_pages, error_fields, problem

ME = "/api/v1/users/me"
USERS = "/api/v1/users"


# --- listing users ---------------------------------------------------------------------


async def test_customers_cannot_list_users(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)

    response = await client.get(USERS, headers=bearer(tokens))

    assert response.status_code == 403
    assert problem(response)["code"] == "forbidden"


@pytest.mark.parametrize("role", [Role.STAFF, Role.ADMIN])
async def test_staff_and_admins_can_list_users(
    client: httpx.AsyncClient, container: Container, role: Role
) -> None:
    customer = await register(client)
    _, headers = await signed_in_as(client, container, role)

    response = await client.get(USERS, headers=headers)

    assert response.status_code == 200, response.text
    assert customer["id"] in {item["id"] for item in response.json()["items"]}


async def test_user_list_pages_return_every_user_exactly_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = [(await register(client))["id"] for _ in range(7)]
    _, headers = await signed_in_as(client, container, Role.STAFF)

    pages = await all_pages(client, USERS, headers=headers, params={"limit": 3})

    ids = [item["id"] for page in pages for item in page]
    assert len(ids) == len(set(ids))
    assert set(created) <= set(ids)
    assert len(ids) == await users_count(container)
    assert all(len(page) == 3 for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= 3


async def test_user_list_is_in_creation_order(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = [(await register(client))["id"] for _ in range(4)]
    _, headers = await signed_in_as(client, container, Role.STAFF)

    pages = await all_pages(client, USERS, headers=headers, params={"limit": 3})

    ids = [item["id"] for page in pages for item in page]
    assert [i for i in ids if i in created] == created


async def test_the_last_user_page_has_no_next_cursor(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, headers = await signed_in_as(client, container, Role.STAFF)
    total = await users_count(container)

    response = await client.get(USERS, params={"limit": total}, headers=headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == total
    assert response.json()["next_cursor"] is None


async def test_a_full_user_page_with_more_to_come_has_a_next_cursor(
    client: httpx.AsyncClient, container: Container
) -> None:
    await register(client)
    _, headers = await signed_in_as(client, container, Role.STAFF)

    response = await client.get(USERS, params={"limit": 1}, headers=headers)

    assert len(response.json()["items"]) == 1
    assert isinstance(response.json()["next_cursor"], str)


async def test_deleted_users_are_not_listed(
    client: httpx.AsyncClient, container: Container
) -> None:
    deleted, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))
    _, headers = await signed_in_as(client, container, Role.STAFF)

    pages = await all_pages(client, USERS, headers=headers, params={"limit": 50})

    assert deleted["id"] not in {item["id"] for page in pages for item in page}


async def test_a_garbage_cursor_is_a_422_problem(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, headers = await signed_in_as(client, container, Role.STAFF)

    response = await client.get(USERS, params={"cursor": "not-a-cursor!!"}, headers=headers)

    assert response.status_code == 422
    assert error_fields(problem(response)) == {"cursor"}

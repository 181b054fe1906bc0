"""Admin management of accounts over the users API: roles, deactivation, and the
refusals around them."""

from __future__ import annotations

import uuid

import httpx
import pytest

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from tests.factories import (
    STRONG_PASSWORD,
    bearer,
    register,
    signed_in_as,
    signed_up,
    user_row,
)
from tests.helpers import error_fields, problem

ME = "/api/v1/users/me"
USERS = "/api/v1/users"


async def token_status(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    return response.status_code


# --- admin management ------------------------------------------------------------------


@pytest.mark.parametrize(("caller", "new_role"), [(Role.STAFF, "staff"), (Role.CUSTOMER, "admin")])
async def test_only_admins_change_a_users_role(
    client: httpx.AsyncClient, container: Container, caller: Role, new_role: str
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, caller)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": new_role}, headers=headers
    )

    assert response.status_code == 403
    assert problem(response)["code"] == "forbidden"
    stored = await user_row(container, target["id"])
    assert stored is not None
    assert stored.role is Role.CUSTOMER


async def test_an_admin_changes_a_users_role(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "staff"}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "staff"
    stored = await user_row(container, target["id"])
    assert stored is not None
    assert stored.role is Role.STAFF


async def test_a_role_change_ends_the_users_sessions(
    client: httpx.AsyncClient, container: Container
) -> None:
    target, tokens = await signed_up(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    await client.patch(f"{USERS}/{target['id']}", json={"role": "staff"}, headers=headers)

    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401


async def test_an_admin_deactivates_a_user_who_then_cannot_sign_in(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"is_active": False}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    stored = await user_row(container, target["id"])
    assert stored is not None
    assert stored.is_active is False
    assert await token_status(client, target["email"], STRONG_PASSWORD) == 401


async def test_an_admin_reactivates_a_user(client: httpx.AsyncClient, container: Container) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)
    await client.patch(f"{USERS}/{target['id']}", json={"is_active": False}, headers=headers)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"is_active": True}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert await token_status(client, target["email"], STRONG_PASSWORD) == 200


async def test_an_admin_cannot_change_their_own_role(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(f"{USERS}/{admin.id}", json={"role": "customer"}, headers=headers)

    assert response.status_code == 403
    assert problem(response)["code"] == "own_role_change"
    stored = await user_row(container, admin.id)
    assert stored is not None
    assert stored.role is Role.ADMIN


async def test_an_admin_cannot_deactivate_themselves(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(f"{USERS}/{admin.id}", json={"is_active": False}, headers=headers)

    assert response.status_code == 403
    assert problem(response)["code"] == "own_role_change"
    stored = await user_row(container, admin.id)
    assert stored is not None
    assert stored.is_active is True


async def test_patching_an_unknown_user_is_404(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{uuid.uuid4()}", json={"role": "staff"}, headers=headers
    )

    assert response.status_code == 404
    assert problem(response)["code"] == "user_not_found"


async def test_patching_a_deleted_user_is_404(
    client: httpx.AsyncClient, container: Container
) -> None:
    target, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "staff"}, headers=headers
    )

    assert response.status_code == 404


async def test_patching_a_user_with_an_unknown_role_is_422(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "superuser"}, headers=headers
    )

    assert response.status_code == 422
    assert error_fields(problem(response)) == {"role"}

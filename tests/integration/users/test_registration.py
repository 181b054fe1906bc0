"""Registration and the profile as the users API stores them: email case, and the
fields a customer may not set (role, active flag)."""

from __future__ import annotations

import httpx
import pytest

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from tests.factories import (
    STRONG_PASSWORD,
    bearer,
    register,
    signed_up,
    unique_email,
    user_row,
    users_count,
)
from tests.helpers import error_fields, problem

ME = "/api/v1/users/me"


async def token_status(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    return response.status_code


# --- registration and email case ------------------------------------------------------


async def test_registering_a_differently_cased_duplicate_email_is_409(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = unique_email("case")
    await register(client, email=email)
    before = await users_count(container)

    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email.upper(), "password": STRONG_PASSWORD, "full_name": "Shouting"},
    )

    assert response.status_code == 409
    assert problem(response)["code"] == "email_taken"
    assert await users_count(container) == before


async def test_email_is_stored_lower_case(client: httpx.AsyncClient, container: Container) -> None:
    email = unique_email("mixed.case")

    user = await register(client, email=email.upper())

    assert user["email"] == email.lower()
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.email == email.lower()


async def test_sign_in_ignores_the_case_of_the_email(client: httpx.AsyncClient) -> None:
    user = await register(client)

    assert await token_status(client, user["email"].upper(), STRONG_PASSWORD) == 200


@pytest.mark.parametrize(("field", "value"), [("role", "admin"), ("is_active", True)])
async def test_register_refuses_a_field_only_staff_set_and_writes_nothing(
    client: httpx.AsyncClient, container: Container, field: str, value: object
) -> None:
    before = await users_count(container)

    response = await client.post(
        "/api/v1/auth/register",
        json={
            "email": unique_email(),
            "password": STRONG_PASSWORD,
            "full_name": "Would-be Admin",
            field: value,
        },
    )

    assert response.status_code == 422
    assert field in error_fields(problem(response))
    assert await users_count(container) == before


@pytest.mark.parametrize(("field", "value"), [("role", "admin"), ("is_active", False)])
async def test_patch_me_refuses_a_field_only_staff_set_and_changes_nothing(
    client: httpx.AsyncClient, container: Container, field: str, value: object
) -> None:
    user, tokens = await signed_up(client, full_name="Plain Customer")

    response = await client.patch(
        ME, json={"full_name": "Renamed", field: value}, headers=bearer(tokens)
    )

    assert response.status_code == 422
    assert field in error_fields(problem(response))
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.role is Role.CUSTOMER
    assert stored.is_active is True
    assert stored.full_name == "Plain Customer"

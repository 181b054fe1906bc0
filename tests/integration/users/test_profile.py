"""One's own profile over the users API: reading it, renaming, changing the password,
and deleting the account."""

from __future__ import annotations

import httpx

from orderdesk.container import Container
from tests.factories import (
    STRONG_PASSWORD,
    bearer,
    signed_up,
    user_row,
    users_count,
)
from tests.helpers import error_fields, problem

ME = "/api/v1/users/me"
NEW_PASSWORD = "copper-lantern-meadow-92"


async def token_status(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    return response.status_code


# --- own profile ---------------------------------------------------------------------


async def test_me_returns_the_callers_profile(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client, full_name="Ada Lovelace")

    response = await client.get(ME, headers=bearer(tokens))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user["id"]
    assert body["email"] == user["email"]
    assert body["full_name"] == "Ada Lovelace"
    assert body["role"] == "customer"
    assert body["is_active"] is True
    assert body["email_verified"] is False
    assert "password_hash" not in body


async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)

    assert response.status_code == 401
    assert problem(response)["code"] == "invalid_token"


async def test_patch_me_changes_the_full_name(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client, full_name="Old Name")

    response = await client.patch(ME, json={"full_name": "New Name"}, headers=bearer(tokens))

    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "New Name"
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.full_name == "New Name"


async def test_password_change_without_current_password_is_422_on_current_password(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)

    response = await client.patch(ME, json={"new_password": NEW_PASSWORD}, headers=bearer(tokens))

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "current_password_required"
    assert error_fields(body) == {"current_password"}
    assert await token_status(client, user["email"], NEW_PASSWORD) == 401
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 200


async def test_password_change_with_wrong_current_password_is_422_on_current_password(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)

    response = await client.patch(
        ME,
        json={"current_password": "not-the-password-at-all", "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "wrong_current_password"
    assert error_fields(body) == {"current_password"}
    assert await token_status(client, user["email"], NEW_PASSWORD) == 401
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 200


async def test_refused_password_change_keeps_the_name_sent_with_it(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client, full_name="Kept Name")

    response = await client.patch(
        ME,
        json={
            "full_name": "Lost Name",
            "current_password": "wrong-one",
            "new_password": NEW_PASSWORD,
        },
        headers=bearer(tokens),
    )

    assert response.status_code == 422
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.full_name == "Kept Name"


async def test_password_change_with_current_password_replaces_the_password(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)

    response = await client.patch(
        ME,
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )

    assert response.status_code == 200, response.text
    assert await token_status(client, user["email"], NEW_PASSWORD) == 200
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 401


async def test_delete_me_is_a_soft_delete_that_stops_sign_in(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)

    response = await client.delete(ME, headers=bearer(tokens))

    assert response.status_code == 204
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 401
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.deleted_at is not None


async def test_delete_me_invalidates_the_callers_access_token(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))

    response = await client.get(ME, headers=bearer(tokens))

    assert response.status_code == 401


async def test_a_deleted_accounts_email_cannot_be_registered_again(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))
    before = await users_count(container)

    response = await client.post(
        "/api/v1/auth/register",
        json={"email": user["email"], "password": STRONG_PASSWORD, "full_name": "Someone Else"},
    )

    assert response.status_code == 409
    assert problem(response)["code"] == "email_taken"
    assert await users_count(container) == before

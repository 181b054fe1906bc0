"""Tokens revoked when an account is deactivated, changes its password or is deleted."""

from __future__ import annotations

from typing import Any

import httpx

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from tests.factories import STRONG_PASSWORD, bearer, sign_in, signed_in_as, signed_up
from tests.helpers import assert_unauthorized, refresh

ME = "/api/v1/users/me"
TOKEN = "/api/v1/auth/token"
NEW_PASSWORD = "amber-lighthouse-tractor-92"


# --- revocation by account changes -------------------------------------------------------


async def deactivate(client: httpx.AsyncClient, container: Container, user_id: str) -> None:
    _, admin = await signed_in_as(client, container, Role.ADMIN)
    response = await client.patch(
        f"/api/v1/users/{user_id}", json={"is_active": False}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False


async def test_deactivating_a_user_invalidates_their_access_token(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200

    await deactivate(client, container, user["id"])

    assert_unauthorized(await client.get(ME, headers=bearer(tokens)))


async def test_deactivating_a_user_invalidates_their_refresh_token(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)

    await deactivate(client, container, user["id"])

    assert_unauthorized(await refresh(client, tokens["refresh_token"]), "invalid_refresh_token")


async def test_a_deactivated_user_cannot_sign_in(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, _ = await signed_up(client)
    await deactivate(client, container, user["id"])

    response = await client.post(
        TOKEN, data={"username": user["email"], "password": STRONG_PASSWORD}
    )

    assert_unauthorized(response, "invalid_credentials")


async def change_password(client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    response = await client.patch(
        ME,
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )
    assert response.status_code == 200, response.text


async def test_changing_the_password_invalidates_old_access_tokens(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)
    other = await sign_in(client, user["email"])

    await change_password(client, tokens)

    assert_unauthorized(await client.get(ME, headers=bearer(tokens)))
    assert_unauthorized(await client.get(ME, headers=bearer(other)))


async def test_changing_the_password_invalidates_old_refresh_tokens(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)
    other = await sign_in(client, user["email"])

    await change_password(client, tokens)

    assert_unauthorized(await refresh(client, tokens["refresh_token"]), "invalid_refresh_token")
    assert_unauthorized(await refresh(client, other["refresh_token"]), "invalid_refresh_token")


async def test_after_a_password_change_only_the_new_password_signs_in(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)
    await change_password(client, tokens)

    old = await client.post(TOKEN, data={"username": user["email"], "password": STRONG_PASSWORD})
    new = await client.post(TOKEN, data={"username": user["email"], "password": NEW_PASSWORD})

    assert_unauthorized(old, "invalid_credentials")
    assert new.status_code == 200


async def test_changing_the_password_needs_the_right_current_password(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await signed_up(client)

    response = await client.patch(
        ME,
        json={"current_password": "not-" + STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )

    assert response.status_code == 422
    assert response.json()["code"] == "wrong_current_password"
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200


async def test_deleting_the_account_invalidates_its_access_token(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await signed_up(client)

    assert (await client.delete(ME, headers=bearer(tokens))).status_code == 204

    assert_unauthorized(await client.get(ME, headers=bearer(tokens)))


async def test_deleting_the_account_invalidates_its_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await signed_up(client)

    await client.delete(ME, headers=bearer(tokens))

    assert_unauthorized(await refresh(client, tokens["refresh_token"]), "invalid_refresh_token")


async def test_a_deleted_account_cannot_sign_in(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))

    response = await client.post(
        TOKEN, data={"username": user["email"], "password": STRONG_PASSWORD}
    )

    assert_unauthorized(response, "invalid_credentials")

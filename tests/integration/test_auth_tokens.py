"""Bearer tokens over HTTP: sign-in, the OAuth2 flow in /docs, refusal of forged
tokens, refresh rotation with reuse detection, and revocation when an account is
deactivated, changes its password or is deleted."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from orderdesk.app import create_app
from orderdesk.auth import service as auth_service
from orderdesk.auth.models import RefreshToken
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.permissions import Role
from orderdesk.auth.tokens import hash_token
from orderdesk.container import Container
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from orderdesk.core.uow import unit_of_work
from orderdesk.users.schemas import UserCreate
from tests.conftest import DatabaseFactory, make_container, make_settings
from tests.helpers import (
    STRONG_PASSWORD,
    access_claims,
    bearer,
    register,
    sign_in,
    signed_up,
    unique_email,
)

ME = "/api/v1/users/me"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PROBLEM_JSON = "application/problem+json"
NEW_PASSWORD = "amber-lighthouse-tractor-92"


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": refresh_token})


def assert_unauthorized(response: httpx.Response, code: str = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == code


async def create_admin(container: Container) -> str:
    email = unique_email("admin")
    async with unit_of_work(container.database) as uow:
        await auth_service.register(
            uow,
            container,
            data=UserCreate(email=email, password=STRONG_PASSWORD, full_name="Ada Admin"),
            role=Role.ADMIN,
        )
    return email


async def family_of(container: Container, refresh_token: str) -> list[RefreshToken]:
    async with container.database.sessions() as session:
        stored = (
            await session.exec(
                select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
            )
        ).one()
        rows = await session.exec(
            select(RefreshToken).where(RefreshToken.family_id == stored.family_id)
        )
        return list(rows.all())


# --- sign-in -------------------------------------------------------------------------


async def test_sign_in_returns_a_bearer_token_pair(
    client: httpx.AsyncClient, container: Container, settings: Settings
) -> None:
    user = await register(client)

    response = await client.post(
        TOKEN, data={"username": user["email"], "password": STRONG_PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert str(container.tokens.decode_access_token(body["access_token"]).user_id) == user["id"]
    assert len(body["refresh_token"]) >= 32


async def test_sign_in_ignores_the_case_of_the_email(client: httpx.AsyncClient) -> None:
    user = await register(client)

    response = await client.post(
        TOKEN, data={"username": user["email"].upper(), "password": STRONG_PASSWORD}
    )

    assert response.status_code == 200


async def test_a_wrong_password_and_an_unknown_email_get_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)

    wrong_password = await client.post(
        TOKEN, data={"username": user["email"], "password": "not-" + STRONG_PASSWORD}
    )
    unknown_email = await client.post(
        TOKEN, data={"username": unique_email("nobody"), "password": STRONG_PASSWORD}
    )

    assert_unauthorized(wrong_password, "invalid_credentials")
    assert_unauthorized(unknown_email, "invalid_credentials")
    assert wrong_password.json() == unknown_email.json()


async def test_refresh_tokens_are_stored_only_as_digests(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, tokens = await signed_up(client)

    async with container.database.sessions() as session:
        hashes = (await session.exec(select(RefreshToken.token_hash))).all()

    assert hash_token(tokens["refresh_token"]) in hashes
    assert tokens["refresh_token"] not in hashes


async def test_a_long_passphrase_can_register_and_sign_in(client: httpx.AsyncClient) -> None:
    password = (
        "quartz lantern drifts over seven tidal meadows while copper gulls argue loudly "
        "about the price of herring at dawn"
    )
    email = unique_email()

    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "full_name": "Long Passphrase"},
    )
    assert registered.status_code == 201, registered.text

    assert (await client.post(TOKEN, data={"username": email, "password": password})).is_success


# --- the OAuth2 flow in /docs ---------------------------------------------------------


async def test_openapi_declares_the_oauth2_password_flow_at_the_token_route(
    client: httpx.AsyncClient,
) -> None:
    schemes = (await client.get("/openapi.json")).json()["components"]["securitySchemes"]

    token_urls = [
        scheme["flows"]["password"]["tokenUrl"]
        for scheme in schemes.values()
        if scheme["type"] == "oauth2" and "password" in scheme.get("flows", {})
    ]
    assert token_urls == [TOKEN]


async def test_openapi_marks_the_profile_route_as_needing_the_oauth2_scheme(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    oauth2 = {
        name
        for name, scheme in schema["components"]["securitySchemes"].items()
        if scheme["type"] == "oauth2"
    }

    security = schema["paths"][ME]["get"]["security"]
    assert oauth2 & {name for requirement in security for name in requirement}


async def test_the_interactive_docs_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text


# --- refused access tokens -------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(settings: Settings, user_id: str, **overrides: Any) -> dict[str, Any]:
    return access_claims(settings, **{"sub": user_id, **overrides})


def signed(settings: Settings, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")


def alg_none(settings: Settings, user_id: str) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims_for(settings, user_id)).encode())
    return f"{header}.{payload}."


def wrong_key(settings: Settings, user_id: str) -> str:
    return jwt.encode(
        claims_for(settings, user_id),
        "some-other-secret-key-that-is-long-enough",
        algorithm="HS256",
    )


def expired(settings: Settings, user_id: str) -> str:
    past = int(time.time()) - 3600
    return signed(settings, claims_for(settings, user_id, iat=past, nbf=past, exp=past + 900))


def wrong_audience(settings: Settings, user_id: str) -> str:
    return signed(settings, claims_for(settings, user_id, aud="another-api"))


def stale_version(settings: Settings, user_id: str) -> str:
    # Signed correctly but minted for an old token version: revoked tokens stay revoked.
    return signed(settings, claims_for(settings, user_id, ver=-1))


FORGERIES: dict[str, Callable[[Settings, str], str]] = {
    "alg-none": alg_none,
    "wrong-key": wrong_key,
    "expired": expired,
    "wrong-audience": wrong_audience,
    "stale-version": stale_version,
}


async def test_a_correctly_signed_hand_made_token_is_accepted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    # The baseline for the forgeries below, each of which changes one thing.
    user = await register(client)

    response = await client.get(
        ME,
        headers={"Authorization": f"Bearer {signed(settings, claims_for(settings, user['id']))}"},
    )

    assert response.status_code == 200
    assert response.json()["id"] == user["id"]


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_a_bad_access_token_is_a_401_problem(
    client: httpx.AsyncClient, settings: Settings, forgery: str
) -> None:
    user = await register(client)
    token = FORGERIES[forgery](settings, user["id"])

    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert_unauthorized(response)


async def test_a_request_without_a_token_is_a_401_problem(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.get(ME))


async def test_a_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)

    response = await client.get(ME, headers={"Authorization": f"Bearer {tokens['refresh_token']}"})

    assert_unauthorized(response)


# --- refresh rotation --------------------------------------------------------------------


async def test_refresh_returns_a_new_working_pair(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client)

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200
    rotated = response.json()
    assert rotated["token_type"] == "bearer"
    assert rotated["refresh_token"] != tokens["refresh_token"]
    me = await client.get(ME, headers=bearer(rotated))
    assert me.json()["id"] == user["id"]
    assert (await refresh(client, rotated["refresh_token"])).status_code == 200


async def test_a_rotated_refresh_token_is_refused_as_reused(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200

    response = await refresh(client, tokens["refresh_token"])

    assert_unauthorized(response, "refresh_token_reused")


async def test_reuse_of_a_rotated_token_revokes_the_newest_token_of_its_family(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await signed_up(client)
    newest = (await refresh(client, tokens["refresh_token"])).json()
    await refresh(client, tokens["refresh_token"])  # the thief, or the victim, replays it

    response = await refresh(client, newest["refresh_token"])

    assert_unauthorized(response, "invalid_refresh_token")


async def test_the_revocation_on_reuse_is_committed(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, tokens = await signed_up(client)
    newest = (await refresh(client, tokens["refresh_token"])).json()
    await refresh(client, tokens["refresh_token"])

    family = await family_of(container, newest["refresh_token"])

    assert len(family) == 2
    assert all(token.revoked_at is not None for token in family)


async def test_reuse_leaves_the_users_other_sessions_alone(client: httpx.AsyncClient) -> None:
    user, leaked = await signed_up(client)
    other = await sign_in(client, user["email"])
    await refresh(client, leaked["refresh_token"])
    await refresh(client, leaked["refresh_token"])

    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_an_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "x" * 43)

    assert_unauthorized(response, "invalid_refresh_token")


async def test_an_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, tokens = await signed_up(client)
    async with container.database.sessions() as session:
        await session.exec(
            sa.update(RefreshToken)
            .where(col(RefreshToken.token_hash) == hash_token(tokens["refresh_token"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()

    response = await refresh(client, tokens["refresh_token"])

    assert_unauthorized(response, "invalid_refresh_token")


async def test_rotation_keeps_the_familys_absolute_expiry(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, tokens = await signed_up(client)
    rotated = (await refresh(client, tokens["refresh_token"])).json()

    family = await family_of(container, rotated["refresh_token"])

    assert len({token.expires_at for token in family}) == 1


# --- logout --------------------------------------------------------------------------------


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)

    response = await client.post(
        LOGOUT, json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens)
    )

    assert response.status_code == 204
    assert_unauthorized(await refresh(client, tokens["refresh_token"]), "invalid_refresh_token")


async def test_logout_revokes_tokens_already_rotated_from_the_same_sign_in(
    client: httpx.AsyncClient,
) -> None:
    _, first = await signed_up(client)
    second = (await refresh(client, first["refresh_token"])).json()

    await client.post(
        LOGOUT, json={"refresh_token": first["refresh_token"]}, headers=bearer(second)
    )

    assert_unauthorized(await refresh(client, second["refresh_token"]), "invalid_refresh_token")


async def test_logout_leaves_other_sessions_signed_in(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client)
    other = await sign_in(client, user["email"])

    await client.post(
        LOGOUT, json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens)
    )

    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_logout_cannot_revoke_another_users_session(client: httpx.AsyncClient) -> None:
    _, victim = await signed_up(client)
    _, attacker = await signed_up(client)

    response = await client.post(
        LOGOUT, json={"refresh_token": victim["refresh_token"]}, headers=bearer(attacker)
    )

    assert response.status_code == 204
    assert (await refresh(client, victim["refresh_token"])).status_code == 200


# --- revocation by account changes -------------------------------------------------------


async def deactivate(client: httpx.AsyncClient, container: Container, user_id: str) -> None:
    admin_tokens = await sign_in(client, await create_admin(container))
    response = await client.patch(
        f"/api/v1/users/{user_id}", json={"is_active": False}, headers=bearer(admin_tokens)
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


# --- concurrency, on committed data ---------------------------------------------------------


async def test_concurrent_refreshes_of_one_token_succeed_at_most_once(
    backend: str, database_factory: DatabaseFactory, hasher: PasswordHasher
) -> None:
    url = await database_factory.create_migrated(backend)
    settings = make_settings(url)
    container = make_container(settings, Database.from_settings(settings), hasher)
    app = create_app(settings, container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            _, tokens = await signed_up(client)
            responses = await asyncio.gather(
                *(refresh(client, tokens["refresh_token"]) for _ in range(5))
            )
    finally:
        await container.close()

    statuses = [response.status_code for response in responses]
    assert statuses.count(200) <= 1, statuses
    assert all(status in (200, 401) for status in statuses), [r.text for r in responses]

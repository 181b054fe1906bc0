"""Refresh tokens over HTTP: rotation with reuse detection, logout, and concurrent
refreshes of one token."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from orderdesk.app import create_app
from orderdesk.auth.models import RefreshToken
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.tokens import hash_token
from orderdesk.container import Container
from orderdesk.core.database import Database
from tests.factories import bearer, sign_in, signed_up
from tests.helpers import (
    DatabaseFactory,
    assert_unauthorized,
    make_container,
    make_settings,
    refresh,
)

ME = "/api/v1/users/me"
LOGOUT = "/api/v1/auth/logout"


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

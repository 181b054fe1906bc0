"""Signing in over HTTP and the bearer tokens it hands out: the token pair, the OAuth2
password flow in /docs, and refusal of forged or misused access tokens."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from sqlmodel import select

from orderdesk.auth.models import RefreshToken
from orderdesk.auth.tokens import hash_token
from orderdesk.container import Container
from orderdesk.core.settings import Settings
from tests.factories import STRONG_PASSWORD, register, signed_up, unique_email
from tests.helpers import access_claims, assert_unauthorized

ME = "/api/v1/users/me"
TOKEN = "/api/v1/auth/token"


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

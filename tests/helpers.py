"""Small helpers that test modules share: sign-up and sign-in over the API, and a
`Database` confined to one test connection."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncConnection

from orderdesk.core.database import Database
from orderdesk.core.settings import Settings

STRONG_PASSWORD = "violet-harbour-engine-47"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = STRONG_PASSWORD,
    full_name: str = "Test User",
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email or unique_email(), "password": password, "full_name": full_name},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = STRONG_PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def signed_up(
    client: httpx.AsyncClient, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register a customer and sign in: (user, tokens)."""
    user = await register(client, **kwargs)
    tokens = await sign_in(client, user["email"], kwargs.get("password", STRONG_PASSWORD))
    return user, tokens


class ManualMonotonic:
    """A monotonic clock in seconds that moves only when a test says so (for the
    throttles' in-process counters)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True, slots=True)
class OneConnectionDatabase(Database):
    """A `Database` whose sessions and connection-level reads all use one test
    connection, inside the test's outer transaction (rolled back at its end)."""

    connection: AsyncConnection

    @asynccontextmanager
    async def current_state(self) -> AsyncIterator[AsyncConnection]:
        yield self.connection


def access_claims(settings: Settings | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete, valid set of access-token claims (a random customer by default),
    with `overrides` on top: for tests that sign tokens themselves."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer if settings else "orderdesk",
        "aud": settings.jwt_audience if settings else "orderdesk-api",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "role": "customer",
        "typ": "access",
        "ver": 0,
    }
    return {**claims, **overrides}


def sign_claims(claims: dict[str, Any], key: str) -> str:
    return jwt.encode(claims, key, algorithm="HS256")

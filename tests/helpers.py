"""Helpers every layer of tests shares that make no test data (that is
`tests/factories.py`): settings and containers, test databases, running the outbox
after a request, reading problem responses and paged lists, and hand-signed tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import ActionLimits, MemoryFailureCounter, SigninThrottle
from orderdesk.auth.tokens import TokenCodec
from orderdesk.bootstrap import build_container, payment_gateway
from orderdesk.container import Container, outbound_http_client
from orderdesk.core import migrations
from orderdesk.core.clock import SystemClock
from orderdesk.core.database import Database
from orderdesk.core.settings import Environment, Settings
from orderdesk.notifications.mailer import LogMailer, Mailer
from orderdesk.outbox import service as outbox_service
from orderdesk.payments.gateway import PaymentGateway
from tests.services import POSTGRES_ADMIN_URL, unavailable

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
TEST_SIGNUP_MAX_PER_ADDRESS = 100_000


# --- settings and containers ----------------------------------------------------------


def make_settings(database_url: str = "sqlite+aiosqlite://", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": Environment.TEST,
        "secret_key": TEST_SECRET,
        "database_url": database_url,
        "log_level": "WARNING",
        # Every test's client comes from one address; tests of the limit set their own.
        "signup_max_per_address": TEST_SIGNUP_MAX_PER_ADDRESS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def make_container(
    settings: Settings,
    database: Database,
    hasher: PasswordHasher,
    *,
    mailer: Mailer | None = None,
    payments: PaymentGateway | None = None,
) -> Container:
    """The container tests use: in-memory throttle counters, no Redis, the given
    mailer (the log mailer unless told) and payment gateway (unless told, the
    sandbox in process, as `build_container` chooses without gateway settings)."""
    counter = MemoryFailureCounter()
    return Container(
        settings=settings,
        database=database,
        clock=SystemClock(),
        hasher=hasher,
        tokens=TokenCodec(settings),
        throttle=SigninThrottle.from_settings(settings, counter),
        limits=ActionLimits.from_settings(settings, counter),
        mailer=mailer if mailer is not None else LogMailer(),
        redis=None,
        http=outbound_http_client(),
        payments=payments if payments is not None else payment_gateway(settings),
    )


async def close_adapters(c: Container) -> None:
    """Close what `make_container` opened (not the database: the test's fixture)."""
    await c.payments.close()
    await c.http.aclose()


# --- databases ------------------------------------------------------------------------


def run_in_thread(function: Any, *args: Any) -> Any:
    """Alembic's env runs its own event loop; keep it off the test loop's thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


async def _create_postgres_database(name: str) -> str:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(name: str) -> None:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


class DatabaseFactory:
    """Creates empty databases on either backend and drops them at the end."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._postgres: list[str] = []

    async def create(self, backend: str) -> str:
        name = f"orderdesk_test_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{self._tmp / name}.db"
        try:
            url = await _create_postgres_database(name)
        except (OSError, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            unavailable("PostgreSQL", exc)
        self._postgres.append(name)
        return url

    async def create_migrated(self, backend: str) -> str:
        url = await self.create(backend)
        run_in_thread(migrations.upgrade, url, "head")
        return url

    async def drop_all(self) -> None:
        for name in self._postgres:
            await _drop_postgres_database(name)


@dataclass(frozen=True, slots=True)
class OneConnectionDatabase(Database):
    """A `Database` whose sessions and connection-level reads all use one test
    connection, inside the test's outer transaction (rolled back at its end)."""

    connection: AsyncConnection

    @asynccontextmanager
    async def current_state(self) -> AsyncIterator[AsyncConnection]:
        yield self.connection


# --- running the app in-process -------------------------------------------------------


async def drain_outbox(c: Container) -> int:
    """Run every due outbox event now, as the in-process runner would after a
    request; returns how many events ran."""
    total = 0

    async def run_all(event_ids: list[uuid.UUID]) -> None:
        for event_id in event_ids:
            await outbox_service.run_event(c, event_id)

    while claimed := await outbox_service.relay_once(c, run_all):
        total += claimed
    return total


class JobsRunningTransport(httpx.ASGITransport):
    """The ASGI transport, plus the MVP tier's in-process runner: the outbox is
    drained after every request, so e-mails and other effects are observable."""

    def __init__(self, *, container: Container, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._container = container

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        await drain_outbox(self._container)
        return response


class AddressedClients:
    """HTTP clients onto apps, each appearing to come from one client address. Given
    a container, the outbox is drained after every request, so mail is sent as the
    in-process runner would send it."""

    def __init__(self) -> None:
        self._open: list[httpx.AsyncClient] = []

    def at(
        self, app: FastAPI, address: str, *, container: Container | None = None
    ) -> httpx.AsyncClient:
        client_address = (address, 1234)
        transport = (
            httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client_address)
            if container is None
            else JobsRunningTransport(
                container=container, app=app, raise_app_exceptions=False, client=client_address
            )
        )
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self._open.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._open:
            await client.aclose()


@asynccontextmanager
async def live_app(
    database_url: str, *, pool_size: int = 5, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """The app over ASGI with the production container (connection pool, no shared
    test transaction), so concurrent requests really run concurrently on the database.
    Nothing is rolled back: give it a database of its own.

    The pool is small (other work may share the PostgreSQL server's connection limit;
    requests beyond it queue for a connection) and logs are JSON, whose plain
    tracebacks render in milliseconds where the console format's take seconds."""
    app_settings = make_settings(
        database_url,
        database_pool_size=pool_size,
        database_max_overflow=0,
        log_format="json",
        **settings,
    )
    container = build_container(app_settings)
    app = create_app(app_settings, container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=60
        ) as client:
            yield client, container
    finally:
        await container.close()


# --- reading responses ----------------------------------------------------------------


def problem(response: httpx.Response) -> dict[str, Any]:
    """The body of a problem-details response, after checking its shape."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == response.status_code
    return body


def assert_unauthorized(response: httpx.Response, code: str = "invalid_token") -> None:
    """A 401 problem with a bearer challenge and `code`."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == code


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    """`POST /auth/refresh` with `refresh_token`: the raw response."""
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


async def all_pages(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    max_pages: int = 100,
) -> list[list[dict[str, Any]]]:
    """Follow `next_cursor` to the end; each page's items."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(max_pages):
        query = dict(params or {})
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get(path, params=query, headers=headers or {})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError(f"{path} still had a next page after {max_pages} pages")


# --- hand-signed tokens ---------------------------------------------------------------


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def hand_signed(claims: dict[str, Any], key: bytes, *, alg: str = "HS256") -> str:
    """An HMAC-signed JWT built without PyJWT, which refuses some of the keys an
    attacker would use (a public key's PEM text)."""
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    signing_input = f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(claims)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def unsigned(claims: dict[str, Any]) -> str:
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."

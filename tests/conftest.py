"""Fixtures shared by every layer of tests: settings, databases on both backends,
the container and an in-process HTTP client.

Integration tests are parametrised over SQLite and PostgreSQL. Each backend gets a
fresh database per run, migrated with Alembic (so every run also tests the
migrations), and each test runs inside a transaction that is rolled back at its end.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import ActionLimits, MemoryFailureCounter, SigninThrottle
from orderdesk.auth.tokens import TokenCodec
from orderdesk.container import Container, outbound_http_client
from orderdesk.core import migrations
from orderdesk.core.clock import SystemClock
from orderdesk.core.database import Database, create_engine
from orderdesk.core.settings import Environment, Settings
from orderdesk.notifications.mailer import LogMailer
from orderdesk.outbox import service as outbox_service
from tests.fakes import handler_table, mailer, production_handlers  # noqa: F401 - fixtures
from tests.helpers import OneConnectionDatabase
from tests.services import POSTGRES_ADMIN_URL, unavailable

BACKENDS = ["sqlite", "postgresql"]
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
TEST_SIGNUP_MAX_PER_ADDRESS = 100_000


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


@pytest.fixture(scope="session")
async def database_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def migrated_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create_migrated(backend)


@pytest.fixture(scope="session")
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url, make_settings(migrated_url))
    yield engine
    await engine.dispose()


@pytest.fixture
async def database(engine: AsyncEngine) -> AsyncIterator[Database]:
    """A Database whose sessions all join one outer transaction, rolled back after the
    test: commits inside the test become savepoint releases."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        sessions = async_sessionmaker(
            bind=connection,
            class_=AsyncSession,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        yield OneConnectionDatabase(
            engine=engine,
            read_engine=engine,
            sessions=sessions,
            read_sessions=sessions,
            connection=connection,
        )
        await transaction.rollback()


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    # OWASP's minimum parameters: the production floor, and the fastest allowed.
    settings = make_settings()
    return PasswordHasher.from_settings(settings)


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return make_settings(migrated_url)


def make_container(settings: Settings, database: Database, hasher: PasswordHasher) -> Container:
    counter = MemoryFailureCounter()
    return Container(
        settings=settings,
        database=database,
        clock=SystemClock(),
        hasher=hasher,
        tokens=TokenCodec(settings),
        throttle=SigninThrottle.from_settings(settings, counter),
        limits=ActionLimits.from_settings(settings, counter),
        mailer=LogMailer(),
        redis=None,
        http=outbound_http_client(),
    )


@pytest.fixture
async def container(
    settings: Settings, database: Database, hasher: PasswordHasher
) -> AsyncIterator[Container]:
    container = make_container(settings, database, hasher)
    yield container
    await container.http.aclose()


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


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container.settings, container=container)
    transport = JobsRunningTransport(container=container, app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def mail_log(caplog: pytest.LogCaptureFixture) -> MailLog:
    caplog.set_level(logging.INFO, logger="orderdesk.mail")
    return MailLog(caplog)


class MailLog:
    """Messages the development mailer wrote to the log."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            record.msg
            for record in self._caplog.records
            if record.name == "orderdesk.mail"
            and isinstance(record.msg, dict)
            and (kind is None or record.msg.get("kind") == kind)
        ]

    def last_token(self, kind: str) -> str:
        messages = self.messages(kind)
        assert messages, f"no {kind} message was sent"
        # Tokens are secrets.token_urlsafe(32): 43 URL-safe characters on a line.
        match = re.search(r"^\s*([A-Za-z0-9_-]{43})\s*$", str(messages[-1]["text"]), re.M)
        assert match, f"no token in the {kind} message"
        return match.group(1)

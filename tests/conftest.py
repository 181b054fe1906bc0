"""Fixtures shared by every layer of tests: settings, databases on both backends,
the container (with a recording mailer) and an in-process HTTP client.

Integration tests are parametrised over SQLite and PostgreSQL. Each backend gets a
fresh database per run, migrated with Alembic (so every run also tests the
migrations), and each test runs inside a transaction that is rolled back at its end.

The plain functions these fixtures use live in `tests/helpers.py`, test data in
`tests/factories.py`, fakes in `tests/fakes.py`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.container import Container
from orderdesk.core.database import Database, create_engine
from orderdesk.core.settings import Settings
from orderdesk.notifications.mailer import LogMailer
from tests.fakes import RecordingMailer, handler_table, production_handlers  # noqa: F401 - fixtures
from tests.helpers import (
    TEST_SECRET,
    TEST_SIGNUP_MAX_PER_ADDRESS,
    DatabaseFactory,
    JobsRunningTransport,
    OneConnectionDatabase,
    drain_outbox,
    make_container,
    make_settings,
    run_in_thread,
)

BACKENDS = ["sqlite", "postgresql"]


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


@pytest.fixture
def mailer() -> RecordingMailer:
    """The `container`'s mailer: every message sent during the test, in `.sent`.
    It hands each message to the log mailer too, for tests still on `mail_log`."""
    return RecordingMailer(also=LogMailer())


@pytest.fixture
async def container(
    settings: Settings, database: Database, hasher: PasswordHasher, mailer: RecordingMailer
) -> AsyncIterator[Container]:
    container = make_container(settings, database, hasher, mailer=mailer)
    yield container
    await container.http.aclose()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container.settings, container=container)
    transport = JobsRunningTransport(container=container, app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


# --- deprecated: mail read from the log, removed once the last user moves to `mailer` --


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


# --- deprecated re-exports, removed once the last importer moves ---------------------
# These moved to tests/helpers.py; other branches' files still import them from here.
__all__ = [
    "TEST_SECRET",
    "TEST_SIGNUP_MAX_PER_ADDRESS",
    "DatabaseFactory",
    "JobsRunningTransport",
    "MailLog",
    "drain_outbox",
    "make_container",
    "make_settings",
    "run_in_thread",
]

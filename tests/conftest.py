"""Fixtures shared by every layer of tests: settings, databases on both backends,
the container (with a recording mailer) and an in-process HTTP client.

Integration tests are parametrised over SQLite and PostgreSQL. Each backend gets a
fresh database per run, migrated with Alembic (so every run also tests the
migrations), and each test runs inside a transaction that is rolled back at its end.

The plain functions these fixtures use live in `tests/helpers.py`, test data in
`tests/factories.py`, fakes in `tests/fakes.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.container import Container
from orderdesk.core.database import Database, create_engine
from orderdesk.core.settings import Settings
from tests.fakes import RecordingMailer, handler_table, production_handlers  # noqa: F401 - fixtures
from tests.helpers import (
    DatabaseFactory,
    JobsRunningTransport,
    OneConnectionDatabase,
    close_adapters,
    make_container,
    make_settings,
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
    """The `container`'s mailer: every message sent during the test, in `.sent`."""
    return RecordingMailer()


@pytest.fixture
async def container(
    settings: Settings, database: Database, hasher: PasswordHasher, mailer: RecordingMailer
) -> AsyncIterator[Container]:
    container = make_container(settings, database, hasher, mailer=mailer)
    yield container
    await close_adapters(container)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container.settings, container=container)
    transport = JobsRunningTransport(container=container, app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client

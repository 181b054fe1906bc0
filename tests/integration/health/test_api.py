"""Liveness and readiness, including readiness against a database that is not there."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.bootstrap import build_container
from orderdesk.container import Container
from orderdesk.core.database import Database, create_engine
from tests.helpers import DatabaseFactory, make_container, make_settings, problem
from tests.services import REDIS_URL, port_open, unavailable

UNREACHABLE_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
async def real_container(
    backend: str, database_factory: DatabaseFactory
) -> AsyncIterator[Container]:
    """A container wired from settings alone, as `orderdesk serve` builds it, on a fresh
    database that nothing else is using."""
    url = await database_factory.create_migrated(backend)
    container = build_container(make_settings(url))
    yield container
    await container.close()


@pytest.fixture
async def real_client(real_container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(real_container.settings, container=real_container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_live_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_is_outside_the_api_prefix(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/live")

    assert response.status_code == 404


async def test_ready_is_200_with_the_database_ok(real_client: httpx.AsyncClient) -> None:
    response = await real_client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_ready_stays_200_while_another_connection_holds_a_write_transaction(
    real_client: httpx.AsyncClient, real_container: Container
) -> None:
    """A write in progress (a long checkout, a migration step, the test harness's own
    transaction) does not make a healthy database look unreachable."""
    settings = real_container.settings
    writer = create_engine(settings.database_url, settings)
    try:
        async with writer.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE busy_marker (id INTEGER)"))
            await connection.execute(sa.text("INSERT INTO busy_marker (id) VALUES (1)"))

            response = await real_client.get("/health/ready")

            assert response.status_code == 200, response.text
    finally:
        await writer.dispose()


@pytest.fixture
def unreachable_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        # A file in a directory that does not exist cannot be opened or created.
        return f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'orderdesk.db'}"
    return UNREACHABLE_POSTGRES


@pytest.fixture
async def unreachable_client(
    unreachable_url: str, hasher: PasswordHasher
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(unreachable_url)
    database = Database.from_settings(settings)
    container: Container = make_container(settings, database, hasher)
    app = create_app(settings, container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await database.dispose()


async def test_ready_is_a_503_problem_when_the_database_is_unreachable(
    unreachable_client: httpx.AsyncClient,
) -> None:
    response = await unreachable_client.get("/health/ready")

    assert response.status_code == 503
    assert problem(response)["code"] == "service_unavailable"


async def test_the_503_does_not_reveal_the_database_error(
    unreachable_client: httpx.AsyncClient,
) -> None:
    response = await unreachable_client.get("/health/ready")

    for leak in ("127.0.0.1:1", "missing-dir", "Errno", "OperationalError", "unable to open"):
        assert leak not in response.text


async def test_live_stays_200_when_the_database_is_unreachable(
    unreachable_client: httpx.AsyncClient,
) -> None:
    response = await unreachable_client.get("/health/live")

    assert response.status_code == 200


# --- the broker (CORE/FULL tiers) ------------------------------------------------

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        if not port_open("127.0.0.1", 6379):
            unavailable("Redis", "127.0.0.1:6379 refused")
        return REDIS_URL
    if not port_open("127.0.0.1", 5672):
        unavailable("RabbitMQ", "127.0.0.1:5672 refused")
    return RABBITMQ_URL


async def _ready_with_broker(database_url: str, broker_url: str) -> httpx.Response:
    container = build_container(make_settings(database_url, broker_url=broker_url))
    app = create_app(container.settings, container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/health/ready")
    finally:
        await container.close()


async def test_ready_checks_the_broker_when_one_is_configured(
    migrated_url: str, broker_url: str
) -> None:
    response = await _ready_with_broker(migrated_url, broker_url)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


async def test_ready_is_a_503_naming_the_broker_when_it_is_unreachable(
    migrated_url: str,
) -> None:
    response = await _ready_with_broker(migrated_url, UNREACHABLE_BROKER)

    assert response.status_code == 503
    body = problem(response)
    assert body["code"] == "service_unavailable"
    assert "broker" in body["detail"]
    assert "database" not in body["detail"]
    assert "127.0.0.1:1" not in response.text


@pytest.fixture
async def hung_broker() -> AsyncIterator[str]:
    """A "broker" that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_hung_broker_is_not_ready_and_its_probes_do_not_pile_up(
    migrated_url: str, hung_broker: str
) -> None:
    threads_before = threading.active_count()
    answers = [await _ready_with_broker(migrated_url, hung_broker) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [503] * 4
    assert all("broker" in problem(answer)["detail"] for answer in answers)
    # One probe thread at most, however many probes found the broker hanging.
    assert threading.active_count() <= threads_before + 1

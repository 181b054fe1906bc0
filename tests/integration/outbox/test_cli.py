"""`orderdesk events list|retry` on a real database, as a subprocess."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from orderdesk.bootstrap import build_container
from orderdesk.container import Container
from orderdesk.outbox.models import EventStatus
from tests.helpers import DatabaseFactory, make_settings
from tests.integration.outbox.probes import Single, dead_letter, emit_one, stored_event
from tests.servers import cli_env as cli_env_for
from tests.servers import run_cli

UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"

pytestmark = pytest.mark.usefixtures("probes")


@pytest.fixture(scope="module")
async def cli_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create_migrated(backend)


@pytest.fixture(scope="module")
def cli_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("events-cli")


@pytest.fixture
def cli_env(cli_database_url: str) -> dict[str, str]:
    # A wide terminal, so the table prints whole ids.
    return {**cli_env_for(cli_database_url), "COLUMNS": "250"}


@asynccontextmanager
async def real_container(database_url: str) -> AsyncIterator[Container]:
    container = build_container(make_settings(database_url))
    try:
        yield container
    finally:
        await container.close()


async def orderdesk(env: dict[str, str], workdir: Path, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(run_cli, env, workdir, *args)
    return result.returncode, result.stdout + result.stderr


async def test_events_list_shows_dead_letters(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        failed = await dead_letter(c)
        pending = await emit_one(c, Single)

    code, output = await orderdesk(cli_env, cli_workdir, "events", "list")

    assert code == 0, output
    assert str(failed) in output
    assert "test.failing" in output
    assert str(pending) not in output


async def test_events_list_filters_by_status(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        failed = await dead_letter(c)
        pending = await emit_one(c, Single)

    code, output = await orderdesk(
        cli_env, cli_workdir, "events", "list", "--status", "pending", "--limit", "200"
    )

    assert code == 0, output
    assert str(pending) in output
    assert str(failed) not in output


async def test_events_retry_queues_a_dead_letter_again(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        failed = await dead_letter(c)

    code, output = await orderdesk(cli_env, cli_workdir, "events", "retry", str(failed))

    assert code == 0, output
    assert "queued again" in output
    async with real_container(cli_database_url) as c:
        event = await stored_event(c, failed)
    assert (event.status, event.attempts) == (EventStatus.PENDING, 0)


async def test_events_retry_refuses_an_event_that_is_not_dead(
    cli_database_url: str, cli_env: dict[str, str], cli_workdir: Path
) -> None:
    async with real_container(cli_database_url) as c:
        event_id = await emit_one(c, Single)

    code, output = await orderdesk(cli_env, cli_workdir, "events", "retry", str(event_id))

    assert code == 1
    assert "cannot retry" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("event_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_events_retry_refuses_an_unknown_id_readably(
    cli_env: dict[str, str], cli_workdir: Path, event_id: str
) -> None:
    code, output = await orderdesk(cli_env, cli_workdir, "events", "retry", event_id)

    assert code == 1
    assert "cannot retry" in output
    assert "Traceback" not in output

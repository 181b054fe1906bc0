"""The working directory and PostgreSQL database each background scenario module
shares (module-scoped: one per test module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support.shop import create_admin
from tests.helpers import DatabaseFactory
from tests.servers import run_cli, server_env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("background-jobs")


@pytest.fixture(scope="module")
async def postgres_url(database_factory: DatabaseFactory) -> str:
    """One PostgreSQL database for the module's broker scenarios."""
    return await database_factory.create("postgresql")


@pytest.fixture(scope="module")
def postgres_admin(postgres_url: str, workdir: Path) -> str:
    env = server_env(postgres_url)
    migrated = run_cli(env, workdir, "migrate", "upgrade")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return create_admin(env, workdir)

"""The migration history runs both ways on every backend, and the models never drift
from what it builds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orderdesk.bootstrap import metadata
from orderdesk.core import migrations
from tests.helpers import DatabaseFactory, run_in_thread

APPLICATION_TABLES = set(metadata.tables)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(migrations.alembic_config("")).get_current_head()


@pytest.fixture
async def empty_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create(backend)


@pytest.fixture
async def inspect_engine(empty_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(empty_url, poolclass=sa.pool.NullPool)
    yield engine
    await engine.dispose()


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names: list[str] = await connection.run_sync(
            lambda sync: sa.inspect(sync).get_table_names()
        )
    return set(names)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def drift(engine: AsyncEngine, target: sa.MetaData) -> list[Any]:
    """What autogenerate would put in a new migration for `target`."""

    def compare(sync: sa.Connection) -> list[Any]:
        # The same options the migration environment gives autogenerate.
        opts = {"compare_type": True, "include_object": migrations.include_object}
        context = MigrationContext.configure(sync, opts=opts)
        return list(compare_metadata(context, target))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


def metadata_with_extra_column() -> sa.MetaData:
    """The project's metadata plus one column that no migration creates."""
    copy = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    copy.tables["users"].append_column(sa.Column("nickname", sa.String(50), nullable=True))
    return copy


async def test_upgrade_head_creates_every_table(
    empty_url: str, inspect_engine: AsyncEngine
) -> None:
    run_in_thread(migrations.upgrade, empty_url, "head")

    assert await table_names(inspect_engine) == APPLICATION_TABLES | {"alembic_version"}
    assert await current_revision(inspect_engine) == head_revision()


async def test_downgrade_base_leaves_only_the_alembic_version_table(
    empty_url: str, inspect_engine: AsyncEngine
) -> None:
    run_in_thread(migrations.upgrade, empty_url, "head")

    run_in_thread(migrations.downgrade, empty_url, "base")

    assert await table_names(inspect_engine) == {"alembic_version"}
    assert await current_revision(inspect_engine) is None


async def test_upgrade_after_downgrade_to_base_rebuilds_the_schema(
    empty_url: str, inspect_engine: AsyncEngine
) -> None:
    run_in_thread(migrations.upgrade, empty_url, "head")
    run_in_thread(migrations.downgrade, empty_url, "base")

    run_in_thread(migrations.upgrade, empty_url, "head")

    assert await table_names(inspect_engine) == APPLICATION_TABLES | {"alembic_version"}
    assert await drift(inspect_engine, metadata) == []


async def test_models_do_not_drift_from_the_migrations(
    empty_url: str, inspect_engine: AsyncEngine
) -> None:
    run_in_thread(migrations.upgrade, empty_url, "head")

    assert await drift(inspect_engine, metadata) == []


async def test_a_model_column_without_a_migration_is_detected_as_drift(
    empty_url: str, inspect_engine: AsyncEngine
) -> None:
    run_in_thread(migrations.upgrade, empty_url, "head")

    diff = await drift(inspect_engine, metadata_with_extra_column())

    assert len(diff) == 1
    operation, _, table, column = diff[0]
    assert (operation, table, column.name) == ("add_column", "users", "nickname")

"""Bulk product import from the command line (`orderdesk import-products`): the same
files and refusals as the API, on a database of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from orderdesk.catalog.models import Product
from orderdesk.core.database import Database
from tests.factories import (
    new_sku,
)
from tests.helpers import TEST_SECRET, DatabaseFactory, make_settings

HEADER = "sku,name,price_amount,currency,stock,is_active\n"
ORDERDESK = Path(sys.executable).with_name("orderdesk")


def csv_row(sku: str, name: str = "Mug", amount: int = 100, stock: int = 5) -> str:
    return f"{sku},{name},{amount},EUR,{stock},true\n"


# --- from the command line ------------------------------------------------------------


@pytest.fixture(scope="module")
async def cli_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    """A database of its own: the command commits, nothing rolls it back."""
    return await database_factory.create_migrated(backend)


@pytest.fixture
async def cli_database(cli_database_url: str) -> AsyncIterator[Database]:
    database = Database.from_settings(make_settings(cli_database_url))
    yield database
    await database.dispose()


def run_import(database_url: str, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ORDERDESK_")}
    env.update(
        ORDERDESK_ENV="test",
        ORDERDESK_SECRET_KEY=TEST_SECRET,
        ORDERDESK_DATABASE_URL=database_url,
        ORDERDESK_LOG_LEVEL="WARNING",
        COLUMNS="200",
    )
    return subprocess.run(
        [str(ORDERDESK), "import-products", *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


async def cli_products(database: Database, skus: list[str]) -> dict[str, Product]:
    async with database.sessions() as session:
        rows = (await session.exec(select(Product).where(col(Product.sku).in_(skus)))).all()
    return {product.sku: product for product in rows}


async def cli_count(database: Database) -> int:
    async with database.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(Product))).one())


async def test_cli_imports_a_csv_file(
    cli_database_url: str, cli_database: Database, tmp_path: Path
) -> None:
    skus = [new_sku("CLI"), new_sku("CLI")]
    path = tmp_path / "products.csv"
    path.write_text(HEADER + csv_row(skus[0], "Mug", 1299, 4) + csv_row(skus[1], "Cap", 1899, 2))

    result = run_import(cli_database_url, tmp_path, str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported 2 products: 2 created, 0 updated" in result.stdout
    stored = await cli_products(cli_database, skus)
    assert (stored[skus[0]].name, stored[skus[0]].price_amount, stored[skus[0]].stock) == (
        "Mug",
        1299,
        4,
    )
    assert stored[skus[1]].name == "Cap"


async def test_cli_reads_json_lines_by_the_file_suffix(
    cli_database_url: str, cli_database: Database, tmp_path: Path
) -> None:
    sku = new_sku("CLI")
    path = tmp_path / "products.jsonl"
    path.write_text(
        json.dumps({"sku": sku, "name": "Tote", "price": {"amount": 1499, "currency": "EUR"}})
        + "\n"
    )

    result = run_import(cli_database_url, tmp_path, str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert (await cli_products(cli_database, [sku]))[sku].name == "Tote"


async def test_cli_rejects_a_file_with_bad_rows_naming_the_lines_and_writes_nothing(
    cli_database_url: str, cli_database: Database, tmp_path: Path
) -> None:
    before = await cli_count(cli_database)
    path = tmp_path / "products.csv"
    path.write_text(
        HEADER
        + csv_row(new_sku("CLI"), "Fine")  # line 2
        + csv_row(new_sku("CLI"), "Negative", -5)  # line 3
        + csv_row(new_sku("CLI"), "Fine too")  # line 4
        + csv_row(new_sku("CLI"), "")  # line 5
    )

    result = run_import(cli_database_url, tmp_path, str(path))

    assert result.returncode == 1
    assert "line 3" in result.stdout
    assert "line 5" in result.stdout
    assert "line 2" not in result.stdout
    assert await cli_count(cli_database) == before


async def test_cli_reimport_updates_and_revives_existing_skus(
    cli_database_url: str, cli_database: Database, tmp_path: Path
) -> None:
    kept, deleted = new_sku("CLI"), new_sku("CLI")
    path = tmp_path / "products.csv"
    path.write_text(HEADER + csv_row(kept, "Mug", 100) + csv_row(deleted, "Cap", 100))
    assert run_import(cli_database_url, tmp_path, str(path)).returncode == 0
    async with cli_database.sessions() as session:
        gone = (await session.exec(select(Product).where(Product.sku == deleted))).one()
        gone.deleted_at = gone.created_at
        await session.commit()
    path.write_text(HEADER + csv_row(kept, "Big mug", 200) + csv_row(deleted, "Cap II", 300))

    result = run_import(cli_database_url, tmp_path, str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 products: 0 created, 2 updated" in result.stdout
    stored = await cli_products(cli_database, [kept, deleted])
    assert (stored[kept].name, stored[kept].price_amount, stored[kept].version) == (
        "Big mug",
        200,
        2,
    )
    assert stored[deleted].deleted_at is None
    assert stored[deleted].name == "Cap II"


async def test_cli_takes_the_format_from_an_option_when_the_suffix_says_nothing(
    cli_database_url: str, cli_database: Database, tmp_path: Path
) -> None:
    sku = new_sku("CLI")
    path = tmp_path / "products.txt"
    path.write_text(HEADER + csv_row(sku))

    guessed = run_import(cli_database_url, tmp_path, str(path))
    told = run_import(cli_database_url, tmp_path, "--format", "csv", str(path))

    assert guessed.returncode == 2
    assert told.returncode == 0, told.stdout + told.stderr
    assert sku in await cli_products(cli_database, [sku])


@pytest.mark.parametrize(
    ("content", "message"),
    [(HEADER.encode(), "at least one product row"), (b"sku,name\n\xff\xfe\n", "not UTF-8")],
)
async def test_cli_refuses_an_empty_or_undecodable_file_as_the_api_does(
    cli_database_url: str, cli_database: Database, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes(content)
    before = await cli_count(cli_database)

    result = run_import(cli_database_url, tmp_path, str(path))

    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stdout
    assert "Traceback" not in result.stderr
    assert await cli_count(cli_database) == before

"""Catalog queries, including the atomic stock moves that orders rely on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.catalog.models import Product, ProductFilter, ProductSort
from orderdesk.core.models import UTCDateTime

_SORT_COLUMNS: dict[ProductSort, Any] = {
    ProductSort.CREATED: None,  # ids are UUIDv7: id order is creation order
    ProductSort.NAME: col(Product.name),
    ProductSort.PRICE: col(Product.price_amount),
}


async def get_by_id(session: AsyncSession, product_id: UUID) -> Product | None:
    product = await session.get(Product, product_id)
    return None if product is None or product.is_deleted else product


async def list_page(
    session: AsyncSession,
    *,
    filters: ProductFilter,
    limit: int,
    after: tuple[Any, UUID] | None,
) -> Sequence[Product]:
    """One page in a stable order (sort column, then id), `limit + 1` rows."""
    statement = select(Product).where(col(Product.deleted_at).is_(None))
    if filters.q:
        pattern = "%" + _escape_like(filters.q.lower()) + "%"
        statement = statement.where(
            sa.or_(
                sa.func.lower(col(Product.name)).like(pattern, escape="\\"),
                sa.func.lower(col(Product.sku)).like(pattern, escape="\\"),
            )
        )
    if filters.is_active is not None:
        statement = statement.where(Product.is_active == filters.is_active)
    if filters.min_price is not None:
        statement = statement.where(col(Product.price_amount) >= filters.min_price)
    if filters.max_price is not None:
        statement = statement.where(col(Product.price_amount) <= filters.max_price)
    if filters.currency is not None:
        statement = statement.where(Product.currency == filters.currency)
    sort_column = _SORT_COLUMNS[filters.sort]
    if sort_column is None:
        if after is not None:
            statement = statement.where(col(Product.id) > after[1])
        statement = statement.order_by(col(Product.id))
    else:
        if after is not None:
            statement = statement.where(sa.tuple_(sort_column, col(Product.id)) > after)
        statement = statement.order_by(sort_column, col(Product.id))
    return (await session.exec(statement.limit(limit + 1))).all()


def sort_key(product: Product, sort: ProductSort) -> Any:
    return {
        ProductSort.CREATED: None,
        ProductSort.NAME: product.name,
        ProductSort.PRICE: product.price_amount,
    }[sort]


_products = Product.__table__  # type: ignore[attr-defined]


# PostgreSQL: one static statement whatever the number of lines (the wanted ids and
# quantities travel as two arrays), the rows locked in id order before the update.
# FOR NO KEY UPDATE, the lock the UPDATE itself takes: unlike FOR UPDATE it does not
# wait for the KEY SHARE locks that order lines' foreign keys hold on products.
_RESERVE_POSTGRES = (
    sa.text(
        """
WITH wanted AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:quantities AS integer[])) AS w(id, quantity)
), locked AS (
    SELECT p.id FROM products p JOIN wanted w ON w.id = p.id ORDER BY p.id FOR NO KEY UPDATE OF p
)
UPDATE products p SET stock = p.stock - w.quantity, version = p.version + 1, updated_at = :now
FROM wanted w
WHERE w.id = p.id AND p.id IN (SELECT id FROM locked)
  AND p.stock >= w.quantity AND p.is_active AND p.deleted_at IS NULL
RETURNING p.id, p.sku, p.name, p.price_amount, p.currency"""
    )
    .bindparams(
        sa.bindparam("ids", type_=postgresql.ARRAY(sa.Uuid())),
        sa.bindparam("quantities", type_=postgresql.ARRAY(sa.Integer())),
        sa.bindparam("now", type_=UTCDateTime()),
    )
    .columns(
        id=sa.Uuid(),
        sku=sa.String(),
        name=sa.String(),
        price_amount=sa.BigInteger(),
        currency=sa.String(),
    )
)


async def reserve_all(
    session: AsyncSession, wanted: Mapping[UUID, int], *, now: datetime
) -> dict[UUID, sa.Row[*tuple[Any, ...]]]:
    """Take the wanted units of each product that is for sale and has them on hand,
    in one conditional UPDATE, so concurrent orders can never oversell; return each
    reserved product's price snapshot (`sku`, `name`, `price_amount`, `currency`).

    A product missing from the result was unknown, not for sale or short: the caller
    must then roll back, as the others were reserved. On PostgreSQL the rows are
    locked first in id order, so two orders for the same products cannot deadlock;
    SQLite serialises writers anyway. A stock move is a change like any other: it
    bumps the version (and so the ETag) and `updated_at` (`now`).
    """
    if session.get_bind().dialect.name == "postgresql":
        params = {"ids": list(wanted), "quantities": list(wanted.values()), "now": now}
        connection = await session.connection()
        return {row.id: row for row in await connection.execute(_RESERVE_POSTGRES, params)}
    quantity = sa.case(dict(wanted), value=_products.c.id)
    statement = (
        sa.update(_products)
        .where(
            _products.c.id.in_(list(wanted)),
            _products.c.stock >= quantity,
            _products.c.is_active.is_(True),
            _products.c.deleted_at.is_(None),
        )
        .values(stock=_products.c.stock - quantity, version=_products.c.version + 1, updated_at=now)
        .returning(
            _products.c.id,
            _products.c.sku,
            _products.c.name,
            _products.c.price_amount,
            _products.c.currency,
        )
    )
    rows = (await session.exec(statement)).all()
    return {row.id: row for row in rows}


_FOR_SALE = sa.select(
    _products.c.id,
    _products.c.sku,
    _products.c.name,
    _products.c.price_amount,
    _products.c.currency,
    _products.c.stock,
).where(
    _products.c.id.in_(sa.bindparam("ids", expanding=True)),
    _products.c.is_active.is_(True),
    _products.c.deleted_at.is_(None),
)


async def for_sale(
    session: AsyncSession, product_ids: Iterable[UUID]
) -> dict[UUID, sa.Row[*tuple[Any, ...]]]:
    """The listed products that exist and are for sale, with their `currency` and
    `stock` on hand (and the rest of an order's price snapshot)."""
    connection = await session.connection()
    rows = await connection.execute(_FOR_SALE, {"ids": list(product_ids)})
    return {row.id: row for row in rows}


async def release_stock(
    session: AsyncSession, product_id: UUID, quantity: int, *, now: datetime
) -> None:
    statement = (
        sa.update(Product)
        .where(col(Product.id) == product_id)
        .values(
            stock=col(Product.stock) + quantity,
            version=col(Product.version) + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def existing_skus(session: AsyncSession, skus: Sequence[str]) -> set[str]:
    statement = select(Product.sku).where(col(Product.sku).in_(skus))
    return set((await session.exec(statement)).all())


# Imported columns; on a conflict, the SKU's product takes the new values and is
# brought back if it was soft-deleted (the SKU stays reserved for it).
_IMPORT_COLUMNS = (
    "id",
    "sku",
    "name",
    "description",
    "price_amount",
    "currency",
    "stock",
    "is_active",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "version",
)
_MERGE_IMPORTED = """
WITH merged AS (
    INSERT INTO products (id, sku, name, description, price_amount, currency, stock,
                          is_active, created_at, updated_at, created_by, updated_by, version)
    SELECT id, sku, name, description, price_amount, currency, stock,
           is_active, created_at, updated_at, created_by, updated_by, version
    FROM product_import
    ON CONFLICT (sku) DO UPDATE SET
        name = excluded.name, description = excluded.description,
        price_amount = excluded.price_amount, currency = excluded.currency,
        stock = excluded.stock, is_active = excluded.is_active, deleted_at = NULL,
        updated_at = excluded.updated_at, updated_by = excluded.updated_by,
        version = products.version + 1
    RETURNING xmax = 0 AS created
)
SELECT count(*) FILTER (WHERE created) FROM merged"""


async def upsert_by_sku(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or update many products by SKU (`rows` hold `_IMPORT_COLUMNS`; no SKU
    twice). Returns how many were created.

    PostgreSQL: the rows are `COPY`-ed into a temporary table and merged with one
    `INSERT … SELECT … ON CONFLICT`, which also counts the inserted rows (`xmax = 0`
    marks a row this statement inserted rather than updated). SQLite: one statement
    run by the driver's `executemany`, after a query for the SKUs that exist."""
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return await _merge_by_copy(session, rows)
    existing = await existing_skus(session, [row["sku"] for row in rows])
    statement = sqlite.insert(_products)
    statement = statement.on_conflict_do_update(
        index_elements=[_products.c.sku],
        set_={
            "name": statement.excluded.name,
            "description": statement.excluded.description,
            "price_amount": statement.excluded.price_amount,
            "currency": statement.excluded.currency,
            "stock": statement.excluded.stock,
            "is_active": statement.excluded.is_active,
            "deleted_at": None,
            "updated_at": statement.excluded.updated_at,
            "updated_by": statement.excluded.updated_by,
            "version": _products.c.version + 1,
        },
    )
    # No RETURNING: SQLAlchemy hands the parameter sets to sqlite3's executemany.
    await session.exec(statement, params=rows)
    return sum(1 for row in rows if row["sku"] not in existing)


async def _merge_by_copy(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    # Statements through SQLAlchemy (they begin the unit of work's transaction, which
    # the driver would otherwise not be in yet); only the COPY through the driver.
    connection = await session.connection()
    await connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS product_import"
        " (LIKE products INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await connection.exec_driver_sql("TRUNCATE product_import")
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.copy_records_to_table(
        "product_import",
        records=[tuple(row[name] for name in _IMPORT_COLUMNS) for row in rows],
        columns=list(_IMPORT_COLUMNS),
    )
    return int((await connection.exec_driver_sql(_MERGE_IMPORTED)).scalar_one())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

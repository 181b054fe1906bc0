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

from orderdesk.catalog.models import Product
from orderdesk.catalog.schemas import ProductFilter, ProductSort

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


async def reserve_all(
    session: AsyncSession, wanted: Mapping[UUID, int]
) -> dict[UUID, sa.Row[*tuple[Any, ...]]]:
    """Take the wanted units of each product that is for sale and has them on hand,
    in one conditional UPDATE, so concurrent orders can never oversell; return each
    reserved product's price snapshot (`sku`, `name`, `price_amount`, `currency`).

    A product missing from the result was unknown, not for sale or short: the caller
    must then roll back, as the others were reserved. On PostgreSQL the rows are
    locked first in id order, so two orders for the same products cannot deadlock.
    """
    quantity = sa.case(dict(wanted), value=_products.c.id)
    targets: Any = _products.c.id.in_(list(wanted))
    if session.get_bind().dialect.name == "postgresql":
        locked = (
            sa.select(_products.c.id)
            .where(targets)
            .order_by(_products.c.id)
            .with_for_update()
            .cte("locked")
        )
        targets = _products.c.id.in_(sa.select(locked.c.id))
    statement = (
        sa.update(_products)
        .where(
            targets,
            _products.c.stock >= quantity,
            _products.c.is_active.is_(True),
            _products.c.deleted_at.is_(None),
        )
        .values(stock=_products.c.stock - quantity, version=_products.c.version + 1)
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


async def stock_levels(
    session: AsyncSession, product_ids: Iterable[UUID]
) -> dict[UUID, tuple[int, str]]:
    """`(stock, currency)` of the listed products that exist and are for sale."""
    statement = select(Product.id, Product.stock, Product.currency).where(
        col(Product.id).in_(list(product_ids)),
        col(Product.is_active).is_(True),
        col(Product.deleted_at).is_(None),
    )
    return {pid: (stock, currency) for pid, stock, currency in (await session.exec(statement))}


async def release_stock(session: AsyncSession, product_id: UUID, quantity: int) -> None:
    statement = (
        sa.update(Product)
        .where(col(Product.id) == product_id)
        .values(stock=col(Product.stock) + quantity, version=col(Product.version) + 1)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def existing_skus(session: AsyncSession, skus: Sequence[str]) -> set[str]:
    statement = select(Product.sku).where(col(Product.sku).in_(skus))
    return set((await session.exec(statement)).all())


async def upsert_by_sku(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, now: datetime, actor: UUID | None
) -> None:
    """Insert or update many products in one statement. A soft-deleted product with
    the same SKU is brought back, since the SKU stays reserved for it."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # A Core statement executed with many parameter sets, no ORM bookkeeping. The
    # RETURNING clause makes SQLAlchemy batch the rows into multi-row VALUES
    # ("insertmanyvalues") instead of one round trip per row.
    table = Product.__table__  # type: ignore[attr-defined]
    statement = insert(table)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.sku],
        set_={
            "name": excluded.name,
            "description": excluded.description,
            "price_amount": excluded.price_amount,
            "currency": excluded.currency,
            "stock": excluded.stock,
            "is_active": excluded.is_active,
            "deleted_at": None,
            "updated_at": now,
            "updated_by": actor,
            "version": table.c.version + 1,
        },
    )
    await session.exec(statement.returning(table.c.id), params=rows)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""Catalog use cases: browse, manage, import."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
from sqlalchemy.exc import IntegrityError

from orderdesk.catalog import repository as product_repository
from orderdesk.catalog.errors import ProductNotFound, SkuTaken
from orderdesk.catalog.importing import ImportFormat, parse_upload
from orderdesk.catalog.models import Product, ProductFilter, ProductSort
from orderdesk.catalog.schemas import (
    ImportResult,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
)
from orderdesk.core import audit
from orderdesk.core.collector import collection_paused
from orderdesk.core.errors import ConcurrentUpdate, PreconditionFailed
from orderdesk.core.ids import new_id
from orderdesk.core.money import MAX_AMOUNT
from orderdesk.core.pagination import InvalidCursor, Page, decode_cursor, encode_cursor
from orderdesk.core.reads import ReplicaReads
from orderdesk.core.uow import UnitOfWork
from orderdesk.core.versioning import check_version

IMPORT_BATCH_SIZE = 1000


async def list_products(
    reads: ReplicaReads, *, filters: ProductFilter, limit: int, cursor: str | None
) -> Page[ProductPublic]:
    after = _decode_product_cursor(cursor, filters.sort)
    async with reads.session() as session:
        rows = await product_repository.list_page(
            session, filters=filters, limit=limit, after=after
        )
    items = [ProductPublic.from_product(product) for product in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        key = product_repository.sort_key(last, filters.sort)
        next_cursor = encode_cursor(
            {"s": filters.sort.value, "k": key, "id": str(last.id)}, kind="products"
        )
    return Page(items=items, next_cursor=next_cursor)


async def get_product(
    reads: ReplicaReads, *, product_id: UUID, include_inactive: bool
) -> ProductPublic:
    async with reads.session() as session:
        product = await product_repository.get_by_id(session, product_id)
    if product is None or not (product.is_active or include_inactive):
        raise ProductNotFound()
    return ProductPublic.from_product(product)


async def create_product(uow: UnitOfWork, *, data: ProductCreate) -> ProductPublic:
    product = Product(
        sku=data.sku,
        name=data.name,
        description=data.description,
        price_amount=data.price.amount,
        currency=data.price.currency,
        stock=data.stock,
        is_active=data.is_active,
    )
    uow.session.add(product)
    try:
        await uow.flush()
    except IntegrityError as exc:
        raise SkuTaken() from exc
    audit.record(uow, action="product.created", entity_type="product", entity_id=product.id)
    return ProductPublic.from_product(product)


async def update_product(
    uow: UnitOfWork, *, product_id: UUID, expected_version: int, data: ProductUpdate
) -> ProductPublic:
    product = await _load(uow, product_id)
    check_version(product.version, expected_version)
    changes: dict[str, Any] = {}
    for field, value in data.model_dump(exclude_unset=True, exclude={"price"}).items():
        if getattr(product, field) != value:
            changes[field] = {"from": getattr(product, field), "to": value}
            setattr(product, field, value)
    if data.price is not None:
        price = (product.price_amount, product.currency)
        if price != (data.price.amount, data.price.currency):
            changes["price"] = {"from": list(price), "to": [data.price.amount, data.price.currency]}
            product.price_amount, product.currency = data.price.amount, data.price.currency
    if changes:
        await _flush_versioned(uow)
        audit.record(
            uow,
            action="product.updated",
            entity_type="product",
            entity_id=product.id,
            changes=changes,
        )
    return ProductPublic.from_product(product)


async def delete_product(
    uow: UnitOfWork, *, product_id: UUID, expected_version: int | None
) -> None:
    product = await _load(uow, product_id)
    if expected_version is not None:
        check_version(product.version, expected_version)
    product.deleted_at = uow.now()
    await _flush_versioned(uow)
    audit.record(uow, action="product.deleted", entity_type="product", entity_id=product.id)


async def import_file(uow: UnitOfWork, *, content: bytes, fmt: ImportFormat) -> ImportResult:
    """Parse, validate and import an uploaded file as one transaction. Parsing and
    validating take seconds of CPU: in a worker thread, with the collector held off
    until the rows are freed (see core/collector.py)."""
    with collection_paused():
        products = await anyio.to_thread.run_sync(parse_upload, content, fmt)
        del content
        result = await import_products(uow, products=products)
        await anyio.to_thread.run_sync(_release, products)
    return result


def _release(rows: list[ProductCreate]) -> None:
    # Freeing a quarter of a million rows at once takes a third of a second with the
    # GIL held; a slice at a time in a worker thread lets the event loop in between.
    while rows:
        del rows[-1000:]


async def import_products(
    uow: UnitOfWork,
    *,
    products: Sequence[ProductCreate],
    on_batch: Callable[[int], None] | None = None,
) -> ImportResult:
    """Upsert validated products by SKU in bulk statements of `IMPORT_BATCH_SIZE`. The
    caller's unit of work makes the whole import one transaction."""
    now = uow.now()
    created = 0
    for start in range(0, len(products), IMPORT_BATCH_SIZE):
        batch = products[start : start + IMPORT_BATCH_SIZE]
        rows = [_import_row(p, now=now, actor=uow.actor_id) for p in batch]
        created += await product_repository.upsert_by_sku(uow.session, rows)
        if on_batch is not None:
            on_batch(len(batch))
    result = ImportResult(rows=len(products), created=created, updated=len(products) - created)
    if uow.actor_id is not None:
        audit.record(
            uow,
            action="product.imported",
            entity_type="user",
            entity_id=uow.actor_id,
            changes=result.model_dump(),
        )
    return result


async def _load(uow: UnitOfWork, product_id: UUID) -> Product:
    product = await product_repository.get_by_id(uow.session, product_id)
    if product is None:
        raise ProductNotFound()
    return product


async def _flush_versioned(uow: UnitOfWork) -> None:
    # The version matched when we read it; losing the race to another writer since
    # then is the same outcome for the client: its If-Match is stale.
    try:
        await uow.flush()
    except ConcurrentUpdate as exc:
        raise PreconditionFailed() from exc


def _import_row(product: ProductCreate, *, now: datetime, actor: UUID | None) -> dict[str, Any]:
    return {
        "id": new_id(),
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price_amount": product.price.amount,
        "currency": product.price.currency,
        "stock": product.stock,
        "is_active": product.is_active,
        "created_at": now,
        "updated_at": now,
        "created_by": actor,
        "updated_by": actor,
        "version": 1,
    }


def _decode_product_cursor(cursor: str | None, sort: ProductSort) -> tuple[Any, UUID] | None:
    """The (sort key, id) a page continues after; a cursor from another sort order, or
    one whose values are not of the sort's type, is refused."""
    if cursor is None:
        return None
    key = decode_cursor(cursor, kind="products")
    value, raw_id = key.get("k"), key.get("id")
    valid = (
        key.get("s") == sort.value
        and isinstance(raw_id, str)
        and {
            ProductSort.CREATED: value is None,
            ProductSort.NAME: isinstance(value, str) and len(value) <= 200,
            ProductSort.PRICE: type(value) is int and 0 <= value <= MAX_AMOUNT,
        }[sort]
    )
    try:
        if not valid:
            raise ValueError("cursor does not match the sort")
        return value, UUID(str(raw_id))
    except ValueError as exc:
        raise InvalidCursor() from exc

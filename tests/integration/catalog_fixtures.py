"""Helpers the catalog, import, order and idempotency tests share: accounts, products
and orders made over the API, and reading or back-dating rows the API does not expose.

These are plain functions (not fixtures) so that each test module can wrap the ones it
needs in fixtures of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from sqlmodel import col, func, select

from orderdesk.app import create_app
from orderdesk.auth import service as auth_service
from orderdesk.auth.permissions import Role
from orderdesk.bootstrap import build_container
from orderdesk.catalog.models import Product
from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.idempotency.models import IdempotencyRecord
from orderdesk.orders.models import Order, OrderStatus
from orderdesk.users.schemas import UserCreate
from tests.conftest import make_settings
from tests.helpers import (
    STRONG_PASSWORD,
    bearer,
    sign_in,
    signed_up,
    unique_email,
)

Headers = dict[str, str]
API = "/api/v1"


def problem(response: httpx.Response) -> dict[str, Any]:
    """The body of a problem-details response, after checking its shape."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == response.status_code
    return body


# --- accounts -------------------------------------------------------------------------


async def staff_headers(
    client: httpx.AsyncClient, container: Container, role: Role = Role.STAFF
) -> Headers:
    """A staff member created the way only an operator can, signed in over the API."""
    data = UserCreate(email=unique_email(role.value), password=STRONG_PASSWORD, full_name="Staff")
    async with unit_of_work(container.database) as uow:
        user = await auth_service.register(uow, container, data=data, role=role)
    return bearer(await sign_in(client, user.email))


async def customer(client: httpx.AsyncClient) -> tuple[dict[str, Any], Headers]:
    """A customer signed up over the API: (user, auth headers)."""
    user, tokens = await signed_up(client)
    return user, bearer(tokens)


# --- products -------------------------------------------------------------------------


def new_sku(prefix: str = "SKU") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def product_body(
    *,
    sku: str | None = None,
    name: str = "Blue enamel mug",
    amount: int = 1299,
    currency: str = "EUR",
    stock: int = 10,
    is_active: bool = True,
    description: str = "",
) -> dict[str, Any]:
    return {
        "sku": sku or new_sku(),
        "name": name,
        "description": description,
        "price": {"amount": amount, "currency": currency},
        "stock": stock,
        "is_active": is_active,
    }


async def create_product(
    client: httpx.AsyncClient, headers: Headers, **fields: Any
) -> dict[str, Any]:
    response = await client.post(f"{API}/products", json=product_body(**fields), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def read_product(
    client: httpx.AsyncClient, product_id: str, headers: Headers | None = None
) -> dict[str, Any]:
    response = await client.get(f"{API}/products/{product_id}", headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_product(container: Container, product_id: UUID | str) -> Product:
    """The row as stored, deleted or not."""
    async with container.database.sessions() as session:
        product = await session.get(Product, UUID(str(product_id)))
    assert product is not None
    return product


async def stock_of(container: Container, product_id: UUID | str) -> int:
    async with container.database.sessions() as session:
        statement = select(Product.stock).where(Product.id == UUID(str(product_id)))
        return int((await session.exec(statement)).one())


async def products_count(container: Container) -> int:
    """Every product row, soft-deleted ones included."""
    async with container.database.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(Product))).one())


async def all_pages(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: Headers | None = None,
    params: dict[str, Any] | None = None,
    max_pages: int = 100,
) -> list[list[dict[str, Any]]]:
    """Follow `next_cursor` to the end; each page's items."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(max_pages):
        query = dict(params or {})
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get(path, params=query, headers=headers or {})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError(f"{path} still had a next page after {max_pages} pages")


# --- orders ---------------------------------------------------------------------------


def lines(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"lines": [{"product_id": pid, "quantity": quantity} for pid, quantity in pairs]}


def idempotency(headers: Headers, key: str | None = None) -> Headers:
    return {**headers, "Idempotency-Key": key or f"key-{uuid.uuid4().hex}"}


async def post_order(
    client: httpx.AsyncClient, headers: Headers, body: dict[str, Any], *, key: str | None = None
) -> httpx.Response:
    return await client.post(f"{API}/orders", json=body, headers=idempotency(headers, key))


async def place_order(
    client: httpx.AsyncClient, headers: Headers, *pairs: tuple[str, int]
) -> dict[str, Any]:
    response = await post_order(client, headers, lines(*pairs))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def set_order_status(container: Container, order_id: UUID | str, status: OrderStatus) -> None:
    """Move an order where no route takes it yet (payment is not built): a stand-in for
    the payment flow, bumping the version as any real update does."""
    async with container.database.sessions() as session:
        await session.exec(
            sa.update(Order)
            .where(col(Order.id) == UUID(str(order_id)))
            .values(status=status, version=col(Order.version) + 1)
        )
        await session.commit()


async def set_order_created_at(
    container: Container, order_id: UUID | str, created_at: datetime
) -> None:
    async with container.database.sessions() as session:
        await session.exec(
            sa.update(Order)
            .where(col(Order.id) == UUID(str(order_id)))
            .values(created_at=created_at)
        )
        await session.commit()


async def stored_order(container: Container, order_id: UUID | str) -> Order:
    async with container.database.sessions() as session:
        order = await session.get(Order, UUID(str(order_id)))
    assert order is not None
    return order


async def orders_count(container: Container) -> int:
    async with container.database.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(Order))).one())


async def expire_idempotency_keys(container: Container, key: str, expires_at: datetime) -> int:
    async with container.database.sessions() as session:
        result = await session.exec(
            sa.update(IdempotencyRecord)
            .where(col(IdempotencyRecord.key) == key)
            .values(expires_at=expires_at)
        )
        await session.commit()
        return int(result.rowcount)


# --- a real app on its own database, for concurrent requests ------------------------


@asynccontextmanager
async def live_app(
    database_url: str, *, pool_size: int = 5, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """The app over ASGI with the production container (connection pool, no shared
    test transaction), so concurrent requests really run concurrently on the database.
    Nothing is rolled back: give it a database of its own.

    The pool is small (other work may share the PostgreSQL server's connection limit;
    requests beyond it queue for a connection) and logs are JSON, whose plain
    tracebacks render in milliseconds where the console format's take seconds."""
    app_settings = make_settings(
        database_url,
        database_pool_size=pool_size,
        database_max_overflow=0,
        log_format="json",
        **settings,
    )
    container = build_container(app_settings)
    app = create_app(app_settings, container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=60
        ) as client:
            yield client, container
    finally:
        await container.close()

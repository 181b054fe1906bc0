"""The one place test data is made.

Two kinds of maker, told apart by what they take first:

- `make_*(container, …)` write through the services in a unit of work, as the app
  itself would, without HTTP: for setup a test does not assert on, and for accounts
  the API cannot create (staff, admins).
- Functions taking an `httpx.AsyncClient` go through the API: sign-up and sign-in,
  products and orders posted as a client would. Use them where the test is about
  the API, or needs what only the API hands out (tokens).

Reading or back-dating rows the API does not expose lives here too, beside the
makers, so a test module imports its data from one module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from sqlmodel import col, func, select

from orderdesk.auth import service as auth_service
from orderdesk.auth.permissions import Principal, Role
from orderdesk.catalog import service as catalog_service
from orderdesk.catalog.models import Product
from orderdesk.catalog.schemas import ProductCreate, ProductPublic
from orderdesk.container import Container
from orderdesk.core.audit import AuditLog
from orderdesk.core.uow import unit_of_work
from orderdesk.idempotency.models import IdempotencyRecord
from orderdesk.orders import service as order_service
from orderdesk.orders.models import Order, OrderStatus
from orderdesk.orders.schemas import OrderCreate, OrderPublic
from orderdesk.users.models import User
from orderdesk.users.schemas import UserCreate

Headers = dict[str, str]
API = "/api/v1"
STRONG_PASSWORD = "violet-harbour-engine-47"


# --- values ---------------------------------------------------------------------------


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


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
    """A valid `POST /products` body; the same fields `make_product` takes."""
    return {
        "sku": sku or new_sku(),
        "name": name,
        "description": description,
        "price": {"amount": amount, "currency": currency},
        "stock": stock,
        "is_active": is_active,
    }


def lines(*pairs: tuple[str, int]) -> dict[str, Any]:
    """A `POST /orders` body from (product id, quantity) pairs."""
    return {"lines": [{"product_id": pid, "quantity": quantity} for pid, quantity in pairs]}


# --- through the services -------------------------------------------------------------


async def make_account(
    container: Container,
    role: Role = Role.CUSTOMER,
    *,
    email: str | None = None,
    password: str = STRONG_PASSWORD,
    full_name: str = "Team Member",
) -> User:
    """An account with `role`, registered through the auth service (any role: the
    API only signs up customers)."""
    data = UserCreate(
        email=email or unique_email(role.value), password=password, full_name=full_name
    )
    async with unit_of_work(container.database) as uow:
        return await auth_service.register(uow, container, data=data, role=role)


async def make_product(container: Container, **fields: Any) -> ProductPublic:
    """A product created through the catalog service; `fields` as `product_body`."""
    data = ProductCreate.model_validate(product_body(**fields))
    async with unit_of_work(container.database) as uow:
        return await catalog_service.create_product(uow, data=data)


async def make_order(container: Container, customer: User, *pairs: tuple[str, int]) -> OrderPublic:
    """An order placed through the order service for `customer`, from (product id,
    quantity) pairs."""
    data = OrderCreate.model_validate(lines(*pairs))
    principal = Principal(id=customer.id, role=customer.role)
    async with unit_of_work(container.database) as uow:
        return await order_service.place_order(uow, customer=principal, data=data)


# --- through the API ------------------------------------------------------------------


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = STRONG_PASSWORD,
    full_name: str = "Test User",
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/auth/register",
        json={"email": email or unique_email(), "password": password, "full_name": full_name},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = STRONG_PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/auth/token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any]) -> Headers:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def signed_up(
    client: httpx.AsyncClient, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register a customer and sign in: (user, tokens)."""
    user = await register(client, **kwargs)
    tokens = await sign_in(client, user["email"], kwargs.get("password", STRONG_PASSWORD))
    return user, tokens


async def customer(client: httpx.AsyncClient) -> tuple[dict[str, Any], Headers]:
    """A customer signed up over the API: (user, auth headers)."""
    user, tokens = await signed_up(client)
    return user, bearer(tokens)


async def signed_in_as(
    client: httpx.AsyncClient, container: Container, role: Role
) -> tuple[User, Headers]:
    """An account with `role` made through the service, signed in over the API:
    (user, auth headers)."""
    user = await make_account(container, role)
    tokens = await sign_in(client, user.email)
    return user, bearer(tokens)


async def staff_headers(
    client: httpx.AsyncClient, container: Container, role: Role = Role.STAFF
) -> Headers:
    """A staff member (or `role`) signed in over the API: auth headers."""
    user = await make_account(container, role, full_name="Staff")
    return bearer(await sign_in(client, user.email))


async def create_product(
    client: httpx.AsyncClient, headers: Headers, **fields: Any
) -> dict[str, Any]:
    """`POST /products` with `product_body(**fields)`; the created product."""
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


def idempotency(headers: Headers, key: str | None = None) -> Headers:
    return {**headers, "Idempotency-Key": key or f"key-{uuid.uuid4().hex}"}


async def post_order(
    client: httpx.AsyncClient, headers: Headers, body: dict[str, Any], *, key: str | None = None
) -> httpx.Response:
    """`POST /orders` with an idempotency key (a fresh one unless given): the raw
    response."""
    return await client.post(f"{API}/orders", json=body, headers=idempotency(headers, key))


async def place_order(
    client: httpx.AsyncClient, headers: Headers, *pairs: tuple[str, int]
) -> dict[str, Any]:
    """An order placed over the API from (product id, quantity) pairs; its body."""
    response = await post_order(client, headers, lines(*pairs))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- reading and back-dating what the API does not expose ------------------------------


async def users_count(container: Container) -> int:
    async with container.database.sessions() as session:
        return (await session.exec(select(func.count()).select_from(User))).one()


async def user_row(container: Container, user_id: UUID | str) -> User | None:
    """The stored row, deleted or not."""
    async with container.database.sessions() as session:
        return await session.get(User, UUID(str(user_id)))


async def audit_rows(container: Container, *, entity_id: UUID | str, action: str) -> list[AuditLog]:
    statement = (
        select(AuditLog)
        .where(AuditLog.entity_id == UUID(str(entity_id)), AuditLog.action == action)
        .order_by(col(AuditLog.occurred_at))
    )
    async with container.database.sessions() as session:
        return list((await session.exec(statement)).all())


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

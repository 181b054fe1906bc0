"""Order use cases: place (reserving stock), read, cancel, fulfil, expire."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.auth.permissions import Permission, Principal
from orderdesk.catalog import repository as product_repository
from orderdesk.core import audit
from orderdesk.core.errors import DomainError
from orderdesk.core.ids import new_id
from orderdesk.core.money import MAX_AMOUNT
from orderdesk.core.pagination import Page, decode_id_cursor, encode_cursor
from orderdesk.core.uow import UnitOfWork
from orderdesk.orders import repository as order_repository
from orderdesk.orders.errors import (
    DuplicateProduct,
    IllegalTransition,
    InsufficientStock,
    MixedCurrencies,
    OrderNotFound,
    OrderTotalTooLarge,
    UnknownProducts,
)
from orderdesk.orders.models import Order, OrderLine, OrderStatus, can_transition
from orderdesk.orders.schemas import OrderCreate, OrderFilter, OrderPublic
from orderdesk.outbox import service as outbox
from orderdesk.outbox.events import (
    OrderCancelled,
    OrderEvent,
    OrderFulfilled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
)

EXPIRY_BATCH_SIZE = 500
# The event each transition emits.
STATUS_EVENTS: dict[OrderStatus, type[OrderEvent]] = {
    OrderStatus.PAID: OrderPaid,
    OrderStatus.CANCELLED: OrderCancelled,
    OrderStatus.FULFILLED: OrderFulfilled,
    OrderStatus.REFUNDED: OrderRefunded,
}


async def place_order(uow: UnitOfWork, *, customer: Principal, data: OrderCreate) -> OrderPublic:
    """Price the lines from the catalog and reserve their stock, all or nothing: the
    reservation comes first and returns the price snapshot."""
    wanted = {line.product_id: line.quantity for line in data.lines}
    if len(wanted) != len(data.lines):
        raise DuplicateProduct()
    reserved = await product_repository.reserve_all(uow.session, wanted, now=uow.now())
    if len(reserved) < len(wanted):  # the caller rolls the partial reservation back
        refusal = _unavailable(
            wanted, await product_repository.for_sale(uow.session, wanted), reserved=set(reserved)
        )
        assert refusal is not None  # a product not reserved is unknown or short
        raise refusal
    if len({product.currency for product in reserved.values()}) > 1:
        raise MixedCurrencies()

    order, lines = _new_order(uow, customer, data, reserved)
    # Each price and quantity is in bounds, their products need not be; the caller
    # rolls the reservation back, as for a shortage.
    if order["total_amount"] > MAX_AMOUNT:
        raise OrderTotalTooLarge(MAX_AMOUNT)
    await order_repository.insert_order(uow.session, order, lines)
    outbox.emit(uow, OrderPlaced(order_id=order["id"]))
    audit.record(
        uow,
        action="order.placed",
        entity_type="order",
        entity_id=order["id"],
        changes={"total": order["total_amount"], "currency": order["currency"]},
    )
    return OrderPublic.build(SimpleNamespace(**order), (SimpleNamespace(**line) for line in lines))


def _unavailable(
    wanted: dict[UUID, int], products: Mapping[UUID, Any], *, reserved: set[UUID]
) -> DomainError | None:
    """Why the order cannot be had: unknown products first, then mixed currencies,
    then every short product with what it has on hand (on hand now: the products
    this order did reserve show its own decrement, and do not count as short)."""
    unknown = [pid for pid in wanted if pid not in products]
    if unknown:
        return UnknownProducts(unknown)
    if len({product.currency for product in products.values()}) > 1:
        return MixedCurrencies()
    shortages = [
        {"product_id": str(pid), "requested": wanted[pid], "available": max(product.stock, 0)}
        for pid, product in products.items()
        if pid not in reserved
    ]
    return InsufficientStock(shortages) if shortages else None


def _new_order(
    uow: UnitOfWork, customer: Principal, data: OrderCreate, products: Mapping[UUID, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The rows of a new order and its lines, priced from the reserved products."""
    order_id = new_id()
    lines = []
    for position, requested in enumerate(data.lines):
        product = products[requested.product_id]
        lines.append(
            {
                "id": new_id(),
                "order_id": order_id,
                "position": position,
                "product_id": requested.product_id,
                "sku": product.sku,
                "name": product.name,
                "unit_price_amount": product.price_amount,
                "quantity": requested.quantity,
                "line_total_amount": product.price_amount * requested.quantity,
            }
        )
    now = uow.now()
    order = {
        "id": order_id,
        "user_id": customer.id,
        "status": OrderStatus.PENDING_PAYMENT,
        "currency": next(iter(products.values())).currency,
        "total_amount": sum(line["line_total_amount"] for line in lines),
        "created_at": now,
        "updated_at": now,
        "created_by": uow.actor_id,
        "updated_by": uow.actor_id,
        "version": 1,
    }
    return order, lines


async def get_order(
    connection: AsyncConnection, *, order_id: UUID, viewer: Principal
) -> OrderPublic:
    """Someone else's order is "not found", never "forbidden", so its existence is
    not confirmed."""
    rows = await order_repository.order_with_lines(connection, order_id)
    if not rows or (rows[0].user_id != viewer.id and not viewer.can(Permission.ORDERS_READ_ALL)):
        raise OrderNotFound()
    return OrderPublic.from_rows(rows)


async def order_snapshot(session: AsyncSession, order_id: UUID) -> dict[str, Any]:
    """The order as the API shows it, as JSON-ready data (for events and webhooks)."""
    rows = await order_repository.order_with_lines(await session.connection(), order_id)
    if not rows:
        raise OrderNotFound()
    return OrderPublic.from_rows(rows).model_dump(mode="json")


async def list_orders(
    session: AsyncSession,
    *,
    viewer: Principal,
    filters: OrderFilter,
    limit: int,
    cursor: str | None,
) -> Page[OrderPublic]:
    if not viewer.can(Permission.ORDERS_READ_ALL):
        filters = filters.model_copy(update={"user_id": viewer.id})
    rows = await order_repository.list_page(
        session, filters=filters, limit=limit, before=decode_id_cursor(cursor, kind="orders")
    )
    page = rows[:limit]
    lines = await order_repository.lines_for(session, [order.id for order in page])
    items = [OrderPublic.from_order(order, lines.get(order.id, [])) for order in page]
    more = len(rows) > limit
    return Page(
        items=items,
        next_cursor=encode_cursor({"id": str(page[-1].id)}, kind="orders") if more else None,
    )


async def cancel_order(uow: UnitOfWork, *, order_id: UUID, actor: Principal) -> OrderPublic:
    """Cancel an unpaid order and return its stock, exactly once."""
    order = await _visible_order(uow.session, order_id=order_id, viewer=actor)
    lines = await _cancel(uow, order, reason="by_user")
    return OrderPublic.from_order(order, lines)


async def fulfill_order(uow: UnitOfWork, *, order_id: UUID) -> OrderPublic:
    order = await order_repository.get_by_id(uow.session, order_id)
    if order is None:
        raise OrderNotFound()
    await _transition(uow, order, OrderStatus.FULFILLED)
    lines = await order_repository.lines_for(uow.session, [order.id])
    return OrderPublic.from_order(order, lines.get(order.id, []))


async def expire_unpaid_orders(uow: UnitOfWork, *, max_age: timedelta) -> int:
    """Cancel orders left unpaid longer than `max_age`, releasing their stock. Meant
    to be called periodically; returns how many it expired."""
    cutoff = uow.now() - max_age
    orders = await order_repository.pending_created_before(
        uow.session, cutoff, limit=EXPIRY_BATCH_SIZE
    )
    for order in orders:
        await _cancel(uow, order, reason="expired")
    return len(orders)


async def _cancel(uow: UnitOfWork, order: Order, *, reason: str) -> list[OrderLine]:
    # The status change is flushed (version-checked) before any stock moves: of two
    # concurrent cancels only one gets past it, so stock is released once.
    await _transition(uow, order, OrderStatus.CANCELLED, changes={"reason": reason})
    lines = (await order_repository.lines_for(uow.session, [order.id])).get(order.id, [])
    for line in sorted(lines, key=lambda line: line.product_id):
        await product_repository.release_stock(
            uow.session, line.product_id, line.quantity, now=uow.now()
        )
    return lines


async def _transition(
    uow: UnitOfWork, order: Order, target: OrderStatus, *, changes: dict[str, Any] | None = None
) -> None:
    if not can_transition(order.status, target):
        raise IllegalTransition(f"An order that is {order.status.value} cannot become {target}.")
    previous = order.status
    order.status = target
    await uow.flush()
    outbox.emit(uow, STATUS_EVENTS[target](order_id=order.id))
    audit.record(
        uow,
        action=f"order.{target.value}",
        entity_type="order",
        entity_id=order.id,
        changes={"status": {"from": previous.value, "to": target.value}, **(changes or {})},
    )


async def _visible_order(session: AsyncSession, *, order_id: UUID, viewer: Principal) -> Order:
    """Load an order the viewer may see; someone else's is "not found", never
    "forbidden", so its existence is not confirmed."""
    order = await order_repository.get_by_id(session, order_id)
    if order is None or (order.user_id != viewer.id and not viewer.can(Permission.ORDERS_READ_ALL)):
        raise OrderNotFound()
    return order

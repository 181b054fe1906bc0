"""Order use cases: place (reserving stock), read, cancel, fulfil, expire; and the
two transitions payments drive, paid and refunded."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.auth.permissions import Permission, Principal
from orderdesk.catalog import repository as product_repository
from orderdesk.core import audit
from orderdesk.core.errors import DomainError
from orderdesk.core.ids import new_id
from orderdesk.core.money import MAX_AMOUNT
from orderdesk.core.pagination import Page, decode_id_cursor, encode_cursor
from orderdesk.core.reads import PrimaryReads, ReplicaReads
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
from orderdesk.orders.models import (
    Order,
    OrderFilter,
    OrderLineRecord,
    OrderRecord,
    OrderStatus,
    can_transition,
)
from orderdesk.orders.schemas import OrderCreate, OrderPublic
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
    placed = await order_repository.insert_order(uow.session, order, lines)
    outbox.emit(uow, OrderPlaced(order_id=order["id"]))
    audit.record(
        uow,
        action="order.placed",
        entity_type="order",
        entity_id=order["id"],
        changes={"total": order["total_amount"], "currency": order["currency"]},
    )
    return OrderPublic.from_record(placed)


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


async def get_order(reads: PrimaryReads, *, order_id: UUID, viewer: Principal) -> OrderPublic:
    """Someone else's order is "not found", never "forbidden", so its existence is
    not confirmed. One statement on a connection outside any transaction."""
    async with reads.connection() as connection:
        order = await order_repository.get_with_lines(connection, order_id)
    if order is None or not _may_see(viewer, order.user_id):
        raise OrderNotFound()
    return OrderPublic.from_record(order)


async def order_snapshot(reads: PrimaryReads, order_id: UUID) -> dict[str, Any]:
    """The order as the API shows it, as JSON-ready data (for events and webhooks)."""
    async with reads.connection() as connection:
        order = await order_repository.get_with_lines(connection, order_id)
    if order is None:
        raise OrderNotFound()
    return OrderPublic.from_record(order).model_dump(mode="json")


async def list_orders(
    reads: ReplicaReads,
    *,
    viewer: Principal,
    filters: OrderFilter,
    limit: int,
    cursor: str | None,
) -> Page[OrderPublic]:
    if not viewer.can(Permission.ORDERS_READ_ALL):
        filters = dataclasses.replace(filters, user_id=viewer.id)
    before = decode_id_cursor(cursor, kind="orders")
    async with reads.session() as session:
        orders, more = await order_repository.page_with_lines(
            session, filters=filters, limit=limit, before=before
        )
    return Page(
        items=[OrderPublic.from_record(order) for order in orders],
        next_cursor=encode_cursor({"id": str(orders[-1].id)}, kind="orders") if more else None,
    )


async def cancel_order(uow: UnitOfWork, *, order_id: UUID, actor: Principal) -> OrderPublic:
    """Cancel an unpaid order and return its stock, exactly once."""
    order = await _visible_order(uow.session, order_id=order_id, viewer=actor)
    return OrderPublic.from_record(await _cancel(uow, order, reason="by_user"))


async def fulfill_order(uow: UnitOfWork, *, order_id: UUID) -> OrderPublic:
    order = await order_repository.get_by_id(uow.session, order_id)
    if order is None:
        raise OrderNotFound()
    await _transition(uow, order, OrderStatus.FULFILLED)
    return OrderPublic.from_record(await order_repository.record_of(uow.session, order))


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


async def mark_paid(uow: UnitOfWork, order: Order, *, payment_id: UUID) -> OrderRecord:
    """The order's payment succeeded: called by payments, in the transaction that
    records the payment, with the order locked."""
    await _transition(uow, order, OrderStatus.PAID, changes={"payment_id": str(payment_id)})
    return await order_repository.record_of(uow.session, order)


async def mark_refunded(uow: UnitOfWork, order: Order, *, restock: bool) -> OrderRecord:
    """The order is refunded in full: called by payments with the order locked.
    With `restock`, its stock returns (the goods came back or never left)."""
    await _transition(uow, order, OrderStatus.REFUNDED, changes={"restock": restock})
    refunded = await order_repository.record_of(uow.session, order)
    if restock:
        await _release_stock(uow, refunded)
    return refunded


def may_see(viewer: Principal, owner_id: UUID) -> bool:
    """Whether `viewer` may see an order of `owner_id` (someone else's is "not
    found", never "forbidden")."""
    return _may_see(viewer, owner_id)


async def _cancel(uow: UnitOfWork, order: Order, *, reason: str) -> OrderRecord:
    # The status change is flushed (version-checked) before any stock moves: of two
    # concurrent cancels only one gets past it, so stock is released once.
    await _transition(uow, order, OrderStatus.CANCELLED, changes={"reason": reason})
    cancelled = await order_repository.record_of(uow.session, order)
    await _release_stock(uow, cancelled)
    return cancelled


async def _release_stock(uow: UnitOfWork, order: OrderRecord) -> None:
    # In product order, so concurrent releases lock rows in the same order.
    for line in sorted(order.lines, key=_by_product):
        await product_repository.release_stock(
            uow.session, line.product_id, line.quantity, now=uow.now()
        )


def _by_product(line: OrderLineRecord) -> UUID:
    return line.product_id


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
    if order is None or not _may_see(viewer, order.user_id):
        raise OrderNotFound()
    return order


def _may_see(viewer: Principal, owner_id: UUID) -> bool:
    return owner_id == viewer.id or viewer.can(Permission.ORDERS_READ_ALL)

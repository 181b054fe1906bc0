from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from orderdesk.auth.dependencies import CurrentUser, require
from orderdesk.auth.permissions import Permission, Principal
from orderdesk.core.deps import Cursor, Limit, PrimaryReadsDep, ReplicaReadsDep, UnitOfWorkDep
from orderdesk.core.openapi import links, problems
from orderdesk.core.pagination import DEFAULT_LIMIT, InvalidCursor, Page
from orderdesk.core.schemas import Timestamp
from orderdesk.idempotency.http import idempotent
from orderdesk.orders import service as order_service
from orderdesk.orders.errors import (
    DuplicateProduct,
    IllegalTransition,
    InsufficientStock,
    MixedCurrencies,
    OrderNotFound,
    OrderTotalTooLarge,
    UnknownProducts,
)
from orderdesk.orders.models import OrderFilter, OrderStatus
from orderdesk.orders.schemas import OrderCreate, OrderPublic

router = APIRouter(prefix="/orders", tags=["orders"])
OrderManager = Annotated[Principal, Depends(require(Permission.ORDERS_MANAGE))]
_ORDER = {"order_id": "$response.body#/id"}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderPublic,
    openapi_extra=links(
        201,
        readOrder=_ORDER,
        cancelOrder=_ORDER,
        fulfillOrder=_ORDER,
        payOrder=_ORDER,
        listOrderPayments=_ORDER,
    ),
)
@problems(OrderTotalTooLarge, UnknownProducts, MixedCurrencies, DuplicateProduct, InsufficientStock)
@idempotent
async def place_order(data: OrderCreate, customer: CurrentUser, uow: UnitOfWorkDep) -> OrderPublic:
    """Place an order and reserve its stock. Needs an `Idempotency-Key`: a retry with
    the same key and body replays the first response."""
    return await order_service.place_order(uow, customer=customer, data=data)


@router.get("")
@problems(InvalidCursor)
async def list_orders(
    viewer: CurrentUser,
    reads: ReplicaReadsDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    status: OrderStatus | None = None,
    user_id: UUID | None = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
) -> Page[OrderPublic]:
    """The caller's orders, newest first; staff see everyone's and may filter by
    `user_id`."""
    filters = OrderFilter(
        user_id=user_id, status=status, created_after=created_after, created_before=created_before
    )
    return await order_service.list_orders(
        reads, viewer=viewer, filters=filters, limit=limit, cursor=cursor
    )


@router.get("/{order_id}")
@problems(OrderNotFound)
async def read_order(order_id: UUID, viewer: CurrentUser, reads: PrimaryReadsDep) -> OrderPublic:
    return await order_service.get_order(reads, order_id=order_id, viewer=viewer)


@router.post("/{order_id}/cancel")
@problems(OrderNotFound, IllegalTransition)
async def cancel_order(order_id: UUID, actor: CurrentUser, uow: UnitOfWorkDep) -> OrderPublic:
    return await order_service.cancel_order(uow, order_id=order_id, actor=actor)


@router.post("/{order_id}/fulfill")
@problems(OrderNotFound, IllegalTransition)
async def fulfill_order(order_id: UUID, _: OrderManager, uow: UnitOfWorkDep) -> OrderPublic:
    return await order_service.fulfill_order(uow, order_id=order_id)

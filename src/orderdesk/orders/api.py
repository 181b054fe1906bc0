from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from starlette.responses import Response

from orderdesk.auth.dependencies import CurrentUser, require
from orderdesk.auth.permissions import Permission, Principal
from orderdesk.container import ContainerDep
from orderdesk.core.deps import Cursor, Limit, UnitOfWorkDep
from orderdesk.core.openapi import links, problems
from orderdesk.core.pagination import DEFAULT_LIMIT, InvalidCursor, Page
from orderdesk.core.schemas import Timestamp
from orderdesk.idempotency import models as idempotency
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
from orderdesk.orders.models import OrderStatus
from orderdesk.orders.schemas import OrderCreate, OrderFilter, OrderPublic

router = APIRouter(prefix="/orders", tags=["orders"])
OrderManager = Annotated[Principal, Depends(require(Permission.ORDERS_MANAGE))]
IdempotencyKey = Annotated[str | None, Depends(idempotency.idempotency_key)]
_ORDER = {"order_id": "$response.body#/id"}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderPublic,
    openapi_extra=links(201, readOrder=_ORDER, cancelOrder=_ORDER, fulfillOrder=_ORDER),
)
@problems(
    OrderTotalTooLarge,
    UnknownProducts,
    MixedCurrencies,
    DuplicateProduct,
    InsufficientStock,
    idempotency.IdempotencyKeyMissing,
    idempotency.IdempotencyKeyInFlight,
    idempotency.IdempotencyKeyReused,
)
async def place_order(
    data: OrderCreate,
    request: Request,
    customer: CurrentUser,
    key: IdempotencyKey,
    uow: UnitOfWorkDep,
    c: ContainerDep,
) -> Response:
    """Place an order and reserve its stock. Needs an `Idempotency-Key`: a retry with
    the same key and body replays the first response."""
    return await idempotency.run_once(
        uow,
        owner_id=customer.id,
        key=key,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path, data),
        ttl=timedelta(seconds=c.settings.idempotency_ttl_seconds),
        status_code=status.HTTP_201_CREATED,
        action=lambda: order_service.place_order(uow, customer=customer, data=data),
    )


@router.get("")
@problems(InvalidCursor)
async def list_orders(
    viewer: CurrentUser,
    uow: UnitOfWorkDep,
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
        uow.session, viewer=viewer, filters=filters, limit=limit, cursor=cursor
    )


@router.get("/{order_id}")
@problems(OrderNotFound)
async def read_order(order_id: UUID, viewer: CurrentUser, c: ContainerDep) -> OrderPublic:
    # No unit of work: one statement on a connection outside any transaction.
    async with c.database.current_state() as connection:
        return await order_service.get_order(connection, order_id=order_id, viewer=viewer)


@router.post("/{order_id}/cancel")
@problems(OrderNotFound, IllegalTransition)
async def cancel_order(order_id: UUID, actor: CurrentUser, uow: UnitOfWorkDep) -> OrderPublic:
    return await order_service.cancel_order(uow, order_id=order_id, actor=actor)


@router.post("/{order_id}/fulfill")
@problems(OrderNotFound, IllegalTransition)
async def fulfill_order(order_id: UUID, _: OrderManager, uow: UnitOfWorkDep) -> OrderPublic:
    return await order_service.fulfill_order(uow, order_id=order_id)

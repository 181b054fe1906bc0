from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response, status

from orderdesk.auth.dependencies import require
from orderdesk.auth.permissions import Permission, Principal
from orderdesk.container import ContainerDep
from orderdesk.core.deps import Cursor, Limit, PrimaryReadsDep, ReplicaReadsDep, UnitOfWorkDep
from orderdesk.core.openapi import links, problems
from orderdesk.core.pagination import DEFAULT_LIMIT, InvalidCursor, Page
from orderdesk.webhooks import service as webhook_service
from orderdesk.webhooks.schemas import (
    DeliveryPublic,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
)
from orderdesk.webhooks.service import SubscriptionNotFound
from orderdesk.webhooks.targets import UnsafeTarget

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
_SUBSCRIPTION = {"subscription_id": "$response.body#/id"}
Admin = Annotated[Principal, Depends(require(Permission.WEBHOOKS_MANAGE))]


@router.get("")
@problems(InvalidCursor)
async def list_subscriptions(
    _: Admin, reads: ReplicaReadsDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[SubscriptionPublic]:
    return await webhook_service.list_subscriptions(reads, limit=limit, cursor=cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=links(
        201,
        deleteSubscription=_SUBSCRIPTION,
        enableSubscription=_SUBSCRIPTION,
        listDeliveries=_SUBSCRIPTION,
    ),
)
@problems(UnsafeTarget)
async def create_subscription(
    data: SubscriptionCreate, _: Admin, uow: UnitOfWorkDep, c: ContainerDep
) -> SubscriptionCreated:
    """Subscribe a URL to event types. The signing secret is in this response only."""
    return await webhook_service.create_subscription(uow, c, data=data)


@router.delete(
    "/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
@problems(SubscriptionNotFound)
async def delete_subscription(subscription_id: UUID, _: Admin, uow: UnitOfWorkDep) -> None:
    await webhook_service.delete_subscription(uow, subscription_id=subscription_id)


@router.post("/{subscription_id}/enable")
@problems(SubscriptionNotFound)
async def enable_subscription(
    subscription_id: UUID, _: Admin, uow: UnitOfWorkDep
) -> SubscriptionPublic:
    """Re-enable a subscription that was disabled after repeated failures."""
    return await webhook_service.enable_subscription(uow, subscription_id=subscription_id)


@router.get("/{subscription_id}/deliveries")
@problems(SubscriptionNotFound, InvalidCursor)
async def list_deliveries(
    subscription_id: UUID,
    _: Admin,
    reads: PrimaryReadsDep,  # not a replica: a subscription just made must not 404
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DeliveryPublic]:
    return await webhook_service.list_deliveries(
        reads, subscription_id=subscription_id, limit=limit, cursor=cursor
    )

"""Managing webhook subscriptions (admins)."""

from __future__ import annotations

import secrets
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.container import Container
from orderdesk.core import audit
from orderdesk.core.errors import NotFound
from orderdesk.core.pagination import Page, decode_id_cursor, page_by_id
from orderdesk.core.reads import ReplicaReads
from orderdesk.core.uow import UnitOfWork
from orderdesk.webhooks import repository as webhook_repository
from orderdesk.webhooks.models import WebhookSubscription
from orderdesk.webhooks.schemas import (
    DeliveryPublic,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
)
from orderdesk.webhooks.targets import check_target


class SubscriptionNotFound(NotFound):
    code = "webhook_not_found"
    title = "No such webhook subscription"


async def create_subscription(
    uow: UnitOfWork, c: Container, *, data: SubscriptionCreate
) -> SubscriptionCreated:
    await check_target(
        data.url,
        allow_private=c.settings.webhook_allow_private_targets,
        require_https=c.settings.webhook_https_required,
    )
    sub = WebhookSubscription(
        url=data.url,
        event_types=sorted(set(data.event_types)),
        secret="whsec_" + secrets.token_urlsafe(32),
    )
    uow.session.add(sub)
    await uow.flush()
    audit.record(
        uow,
        action="webhook.created",
        entity_type="webhook_subscription",
        entity_id=sub.id,
        changes={"url": sub.url, "event_types": sub.event_types},
    )
    return SubscriptionCreated(
        **SubscriptionPublic.from_subscription(sub).model_dump(), secret=sub.secret
    )


async def list_subscriptions(
    reads: ReplicaReads, *, limit: int, cursor: str | None
) -> Page[SubscriptionPublic]:
    after = decode_id_cursor(cursor, kind="webhooks")
    async with reads.session() as session:
        rows = await webhook_repository.list_page(session, limit=limit, after=after)
    return page_by_id(rows, limit=limit, item=SubscriptionPublic.from_subscription, kind="webhooks")


async def delete_subscription(uow: UnitOfWork, *, subscription_id: UUID) -> None:
    sub = await _load(uow.session, subscription_id)
    sub.deleted_at = uow.now()
    sub.is_active = False
    await uow.flush()
    audit.record(
        uow, action="webhook.deleted", entity_type="webhook_subscription", entity_id=sub.id
    )


async def enable_subscription(uow: UnitOfWork, *, subscription_id: UUID) -> SubscriptionPublic:
    """Re-enable a subscription that was disabled after repeated failures."""
    sub = await _load(uow.session, subscription_id)
    sub.is_active = True
    sub.consecutive_failures = 0
    sub.disabled_reason = None
    await uow.flush()
    audit.record(
        uow, action="webhook.enabled", entity_type="webhook_subscription", entity_id=sub.id
    )
    return SubscriptionPublic.from_subscription(sub)


async def list_deliveries(
    reads: ReplicaReads, *, subscription_id: UUID, limit: int, cursor: str | None
) -> Page[DeliveryPublic]:
    after = decode_id_cursor(cursor, kind="deliveries")
    async with reads.session() as session:
        await _load(session, subscription_id)
        rows = await webhook_repository.deliveries_page(
            session, subscription_id, limit=limit, after=after
        )
    return page_by_id(rows, limit=limit, item=DeliveryPublic.from_delivery, kind="deliveries")


async def _load(session: AsyncSession, subscription_id: UUID) -> WebhookSubscription:
    sub = await webhook_repository.get(session, subscription_id)
    if sub is None:
        raise SubscriptionNotFound()
    return sub

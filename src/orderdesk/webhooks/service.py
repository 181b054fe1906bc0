"""Managing webhook subscriptions (admins), and the rules of outbound delivery."""

from __future__ import annotations

import json
import secrets
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.container import Container
from orderdesk.core import audit
from orderdesk.core.errors import NotFound
from orderdesk.core.pagination import Page, decode_id_cursor, page_by_id
from orderdesk.core.reads import PrimaryReads, ReplicaReads
from orderdesk.core.uow import UnitOfWork
from orderdesk.orders import service as order_service
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.events import WebhookDeliveryRequested
from orderdesk.webhooks import repository as webhook_repository
from orderdesk.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from orderdesk.webhooks.schemas import (
    DeliveryPublic,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
)
from orderdesk.webhooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
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
    reads: PrimaryReads, *, subscription_id: UUID, limit: int, cursor: str | None
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


# Outbound delivery: the fan-out of a domain event into deliveries, what a delivery
# sends, and how its outcome counts against the subscription. The HTTP call itself
# is in `webhooks.handlers`.


async def fan_out(uow: UnitOfWork, *, event_id: UUID, topic: str, order_id: UUID) -> int:
    """One delivery row per active subscription to `topic`, each with an outbox event
    to send it, in the caller's transaction; how many it made. A redelivered fan-out
    finds its deliveries (unique per subscription and event) and makes none."""
    subscriptions = await webhook_repository.active_for_topic(uow.session, topic)
    if not subscriptions:
        return 0
    order = await order_service.order_snapshot(
        PrimaryReads.on(await uow.session.connection()), order_id
    )
    body = {
        "id": str(event_id),
        "type": topic,
        "created_at": uow.now().isoformat(),
        "data": {"order": order},
    }
    made = 0
    for sub in subscriptions:
        if await webhook_repository.delivery_exists(uow.session, sub.id, event_id):
            continue
        delivery = WebhookDelivery(
            subscription_id=sub.id,
            event_id=event_id,
            topic=topic,
            payload=body,
            created_at=uow.now(),
        )
        uow.session.add(delivery)
        outbox_service.emit(uow, WebhookDeliveryRequested(delivery_id=delivery.id))
        made += 1
    return made


def signed_request(
    sub: WebhookSubscription, delivery: WebhookDelivery, *, timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery: compact JSON, signed over the timestamp
    and the exact bytes sent."""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "orderdesk-webhooks/1",
        EVENT_ID_HEADER: str(delivery.event_id),
        EVENT_TYPE_HEADER: delivery.topic,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(sub.secret, timestamp, body),
    }
    return body, headers


def status_after_failure(*, attempt: int, max_attempts: int) -> DeliveryStatus:
    """A failed send stays pending (the outbox retries it) until its last attempt."""
    return DeliveryStatus.FAILED if attempt >= max_attempts else DeliveryStatus.PENDING


async def settle_delivery(
    uow: UnitOfWork,
    delivery_id: UUID,
    *,
    status: DeliveryStatus,
    disable_after: int,
    code: int | None = None,
    error: str | None = None,
) -> None:
    """Record an attempt's outcome. A success resets the subscription's run of
    failures; a final failure extends it, and `disable_after` failures in a row
    disable the subscription."""
    delivery = await webhook_repository.get_delivery(uow.session, delivery_id)
    if delivery is None:
        return
    delivery.attempts += 1
    delivery.status = status
    delivery.last_status_code = code
    delivery.last_error = error
    if status is DeliveryStatus.SUCCEEDED:
        delivery.delivered_at = uow.now()
        await webhook_repository.reset_failures(uow.session, delivery.subscription_id)
    elif status is DeliveryStatus.FAILED:
        await webhook_repository.count_failure(uow.session, delivery.subscription_id)
        await webhook_repository.disable_if_failing(
            uow.session,
            delivery.subscription_id,
            failures=disable_after,
            reason=f"disabled after {disable_after} failed deliveries in a row",
        )

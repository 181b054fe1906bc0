"""Outbound webhook handlers.

Fan-out: each subscribed domain event becomes one delivery row per active
subscription plus one outbox event to send it, in one transaction; a unique
`(subscription, event)` key makes a redelivered fan-out a no-op. Delivery: a signed
POST; a failure raises so the outbox retries it with backoff; the last failed
attempt marks the delivery failed and counts against the subscription, which is
disabled after `ORDERDESK_WEBHOOK_DISABLE_AFTER` failed deliveries in a row.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from sqlmodel import col

from orderdesk.container import Container
from orderdesk.core.errors import InvalidInput
from orderdesk.core.reads import PrimaryReads
from orderdesk.core.uow import unit_of_work
from orderdesk.orders import service as order_service
from orderdesk.outbox import models as outbox
from orderdesk.outbox.events import WEBHOOK_EVENTS, WebhookDeliveryRequested
from orderdesk.outbox.models import EventContext, handles
from orderdesk.webhooks import repository as webhook_repository
from orderdesk.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from orderdesk.webhooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from orderdesk.webhooks.targets import check_target

DELIVER_TOPIC = WebhookDeliveryRequested.topic


class DeliveryFailed(Exception):
    pass


async def fan_out(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        subscriptions = await webhook_repository.active_for_topic(uow.session, ctx.topic)
        if not subscriptions:
            await outbox.finish(uow, ctx, now=uow.now())
            return
        order = await order_service.order_snapshot(
            PrimaryReads.on(await uow.session.connection()), UUID(payload["order_id"])
        )
        body = {
            "id": str(ctx.event_id),
            "type": ctx.topic,
            "created_at": uow.now().isoformat(),
            "data": {"order": order},
        }
        for sub in subscriptions:
            if await webhook_repository.delivery_exists(uow.session, sub.id, ctx.event_id):
                continue
            delivery = WebhookDelivery(
                subscription_id=sub.id,
                event_id=ctx.event_id,
                topic=ctx.topic,
                payload=body,
                created_at=uow.now(),
            )
            uow.session.add(delivery)
            outbox.emit(uow, WebhookDeliveryRequested(delivery_id=delivery.id))
        # The deliveries and their outbox events commit with the fan-out's completion.
        await outbox.finish(uow, ctx, now=uow.now())


for _event in WEBHOOK_EVENTS:
    handles(_event.topic, name=f"webhooks.fan_out.{_event.topic}")(fan_out)


@handles(DELIVER_TOPIC, name="webhooks.deliver")
async def deliver(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    delivery_id = UUID(payload["delivery_id"])
    # The primary, never a replica: the delivery was written a moment ago, and a
    # stale status could send it twice.
    async with c.database.latest_session() as session:
        delivery = await webhook_repository.get_delivery(session, delivery_id)
        sub = await webhook_repository.get(session, delivery.subscription_id) if delivery else None
    if delivery is None or delivery.status is not DeliveryStatus.PENDING:
        return
    if sub is None or not sub.is_active:
        await _settle(c, delivery_id, status=DeliveryStatus.FAILED, error="subscription inactive")
        return
    try:
        await check_target(
            sub.url,
            allow_private=c.settings.webhook_allow_private_targets,
            require_https=c.settings.webhook_https_required,
        )
    except InvalidInput as exc:  # the address changed to a forbidden one: never send
        await _settle(c, delivery_id, status=DeliveryStatus.FAILED, error=exc.detail)
        return
    status_code, error = await _post(c, sub, delivery)
    if error is None:
        await _settle(c, delivery_id, status=DeliveryStatus.SUCCEEDED, code=status_code)
        return
    final = ctx.attempt >= c.settings.job_max_attempts
    await _settle(
        c,
        delivery_id,
        status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
        code=status_code,
        error=error,
    )
    raise DeliveryFailed(error)


async def _post(
    c: Container, sub: WebhookSubscription, delivery: WebhookDelivery
) -> tuple[int | None, str | None]:
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "orderdesk-webhooks/1",
        EVENT_ID_HEADER: str(delivery.event_id),
        EVENT_TYPE_HEADER: delivery.topic,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(sub.secret, timestamp, body),
    }
    try:
        response = await c.http.post(
            sub.url,
            content=body,
            headers=headers,
            timeout=c.settings.webhook_timeout_seconds,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


async def _settle(
    c: Container,
    delivery_id: UUID,
    *,
    status: DeliveryStatus,
    code: int | None = None,
    error: str | None = None,
) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        delivery = await webhook_repository.get_delivery(uow.session, delivery_id)
        if delivery is None:
            return
        delivery.attempts += 1
        delivery.status = status
        delivery.last_status_code = code
        delivery.last_error = error
        if status is DeliveryStatus.SUCCEEDED:
            delivery.delivered_at = uow.now()
            await _count(uow.session, delivery.subscription_id, failed=False, c=c)
        elif status is DeliveryStatus.FAILED:
            await _count(uow.session, delivery.subscription_id, failed=True, c=c)


async def _count(session: Any, subscription_id: UUID, *, failed: bool, c: Container) -> None:
    """Atomic counter updates: concurrent deliveries to one subscription must not
    lose each other's counts."""
    table = WebhookSubscription
    if not failed:
        await session.exec(
            sa.update(table)
            .where(col(table.id) == subscription_id, col(table.consecutive_failures) > 0)
            .values(consecutive_failures=0, version=col(table.version) + 1)
        )
        return
    await session.exec(
        sa.update(table)
        .where(col(table.id) == subscription_id)
        .values(
            consecutive_failures=col(table.consecutive_failures) + 1,
            version=col(table.version) + 1,
        )
    )
    limit = c.settings.webhook_disable_after
    await session.exec(
        sa.update(table)
        .where(
            col(table.id) == subscription_id,
            col(table.is_active).is_(True),
            col(table.consecutive_failures) >= limit,
        )
        .values(
            is_active=False,
            disabled_reason=f"disabled after {limit} failed deliveries in a row",
            version=col(table.version) + 1,
        )
    )

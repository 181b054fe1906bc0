"""Outbound webhook handlers: thin adapters over `webhooks.service`.

Fan-out: each subscribed domain event becomes one delivery row per active
subscription plus one outbox event to send it, in one transaction; a unique
`(subscription, event)` key makes a redelivered fan-out a no-op. Delivery: a signed
POST; a failure raises so the outbox retries it with backoff; the last failed
attempt marks the delivery failed and counts against the subscription, which is
disabled after `ORDERDESK_WEBHOOK_DISABLE_AFTER` failed deliveries in a row.
Which events reach these handlers is wired in `orderdesk.bootstrap.HANDLERS`.
"""

from __future__ import annotations

import time
from uuid import UUID

import httpx

from orderdesk.container import Container
from orderdesk.core.errors import InvalidInput
from orderdesk.core.uow import unit_of_work
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.events import OrderEvent, WebhookDeliveryRequested
from orderdesk.outbox.wiring import EventContext
from orderdesk.webhooks import repository as webhook_repository
from orderdesk.webhooks import service as webhook_service
from orderdesk.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from orderdesk.webhooks.targets import check_target


class DeliveryFailed(Exception):
    pass


async def fan_out_webhooks(c: Container, event: OrderEvent, ctx: EventContext) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        await webhook_service.fan_out(
            uow, event_id=ctx.event_id, topic=event.topic, order_id=event.order_id
        )
        # The deliveries and their outbox events commit with the fan-out's completion.
        await outbox_service.finish(uow, ctx, now=uow.now())


async def deliver_webhook(c: Container, event: WebhookDeliveryRequested, ctx: EventContext) -> None:
    delivery_id = event.delivery_id
    # The primary, never a replica: the delivery was written a moment ago, and a
    # stale status could send it twice.
    async with c.database.primary_reads().session() as session:
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
    status = webhook_service.status_after_failure(
        attempt=ctx.attempt, max_attempts=c.settings.event_max_attempts
    )
    await _settle(c, delivery_id, status=status, code=status_code, error=error)
    raise DeliveryFailed(error)


async def _post(
    c: Container, sub: WebhookSubscription, delivery: WebhookDelivery
) -> tuple[int | None, str | None]:
    body, headers = webhook_service.signed_request(sub, delivery, timestamp=int(time.time()))
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
        await webhook_service.settle_delivery(
            uow,
            delivery_id,
            status=status,
            code=code,
            error=error,
            disable_after=c.settings.webhook_disable_after,
        )

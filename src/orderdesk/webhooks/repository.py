from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.webhooks.models import WebhookDelivery, WebhookSubscription


async def get(session: AsyncSession, subscription_id: UUID) -> WebhookSubscription | None:
    sub = await session.get(WebhookSubscription, subscription_id)
    return None if sub is None or sub.is_deleted else sub


async def list_page(
    session: AsyncSession, *, limit: int, after: UUID | None
) -> Sequence[WebhookSubscription]:
    statement = select(WebhookSubscription).where(col(WebhookSubscription.deleted_at).is_(None))
    if after is not None:
        statement = statement.where(col(WebhookSubscription.id) > after)
    return (
        await session.exec(statement.order_by(col(WebhookSubscription.id)).limit(limit + 1))
    ).all()


async def active_for_topic(session: AsyncSession, topic: str) -> list[WebhookSubscription]:
    """Active subscriptions to `topic`. Subscriptions are few, and JSON containment
    differs between backends, so the topic filter runs here."""
    statement = select(WebhookSubscription).where(
        col(WebhookSubscription.deleted_at).is_(None), col(WebhookSubscription.is_active).is_(True)
    )
    return [sub for sub in (await session.exec(statement)).all() if topic in sub.event_types]


async def get_delivery(session: AsyncSession, delivery_id: UUID) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, delivery_id)


async def delivery_exists(session: AsyncSession, subscription_id: UUID, event_id: UUID) -> bool:
    statement = select(WebhookDelivery.id).where(
        WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.event_id == event_id
    )
    return (await session.exec(statement)).first() is not None


async def deliveries_page(
    session: AsyncSession, subscription_id: UUID, *, limit: int, after: UUID | None
) -> Sequence[WebhookDelivery]:
    statement = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if after is not None:
        statement = statement.where(col(WebhookDelivery.id) > after)
    return (await session.exec(statement.order_by(col(WebhookDelivery.id)).limit(limit + 1))).all()


# Counter updates are single atomic statements: concurrent deliveries to one
# subscription must not lose each other's counts.
async def reset_failures(session: AsyncSession, subscription_id: UUID) -> None:
    table = WebhookSubscription
    await session.exec(
        update(table)
        .where(col(table.id) == subscription_id, col(table.consecutive_failures) > 0)
        .values(consecutive_failures=0, version=col(table.version) + 1)
    )


async def count_failure(session: AsyncSession, subscription_id: UUID) -> None:
    table = WebhookSubscription
    await session.exec(
        update(table)
        .where(col(table.id) == subscription_id)
        .values(
            consecutive_failures=col(table.consecutive_failures) + 1,
            version=col(table.version) + 1,
        )
    )


async def disable_if_failing(
    session: AsyncSession, subscription_id: UUID, *, failures: int, reason: str
) -> None:
    """Disable the subscription if it is active and has failed `failures` times in a
    row (checked in the statement, so it sees every concurrent count)."""
    table = WebhookSubscription
    await session.exec(
        update(table)
        .where(
            col(table.id) == subscription_id,
            col(table.is_active).is_(True),
            col(table.consecutive_failures) >= failures,
        )
        .values(is_active=False, disabled_reason=reason, version=col(table.version) + 1)
    )

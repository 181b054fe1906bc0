from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field

from orderdesk.core.schemas import StrictModel
from orderdesk.core.text import SINGLE_LINE
from orderdesk.outbox.events import WebhookTopic
from orderdesk.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription

MAX_URL_LENGTH = 2048


class SubscriptionCreate(StrictModel):
    url: Annotated[str, Field(min_length=8, max_length=MAX_URL_LENGTH), SINGLE_LINE]
    event_types: Annotated[list[WebhookTopic], Field(min_length=1, max_length=16)]


class SubscriptionPublic(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    is_active: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def from_subscription(cls, sub: WebhookSubscription) -> SubscriptionPublic:
        return cls(
            id=sub.id,
            url=sub.url,
            event_types=sub.event_types,
            is_active=sub.is_active,
            consecutive_failures=sub.consecutive_failures,
            disabled_reason=sub.disabled_reason,
            created_at=sub.created_at,
        )


class SubscriptionCreated(SubscriptionPublic):
    secret: str = Field(description="Shown once: keep it to verify signatures.")


class DeliveryPublic(BaseModel):
    id: UUID
    event_id: UUID
    topic: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_delivery(cls, d: WebhookDelivery) -> DeliveryPublic:
        return cls(
            id=d.id,
            event_id=d.event_id,
            topic=d.topic,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )

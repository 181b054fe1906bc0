from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import Entity, SoftDeletable, UTCDateTime


class WebhookSubscription(SoftDeletable, table=True):
    __tablename__ = "webhook_subscriptions"

    url: str = Field(max_length=2048, nullable=False)
    event_types: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    # Needed in clear to sign deliveries; shown to the admin once, at creation.
    secret: str = Field(max_length=128, nullable=False)
    is_active: bool = Field(default=True, nullable=False)
    consecutive_failures: int = Field(default=0, nullable=False)
    disabled_reason: str | None = Field(default=None, max_length=500)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(Entity, table=True):
    """One event sent to one subscription, with the outcome of its last attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.UniqueConstraint("subscription_id", "event_id"),)

    subscription_id: UUID = Field(foreign_key="webhook_subscriptions.id", nullable=False)
    event_id: UUID = Field(nullable=False)
    topic: str = Field(max_length=64, nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    status: DeliveryStatus = Field(
        default=DeliveryStatus.PENDING,
        sa_type=sa.Enum(
            DeliveryStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    attempts: int = Field(default=0, nullable=False)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

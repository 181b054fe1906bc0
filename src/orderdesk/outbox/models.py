"""The outbox's tables: one row per event and consumer (`outbox_events`), and one
per effect a handler has produced (`handled_effects`).

A row is the record of what is done, not the broker; `orderdesk.outbox.service`
writes rows (`emit`) and runs them, `orderdesk.outbox.repository` holds every query.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import Entity, UTCDateTime


class EventStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class OutboxEvent(Entity, table=True):
    __tablename__ = "outbox_events"
    __table_args__ = (sa.Index("ix_outbox_events_status_available_at", "status", "available_at"),)

    topic: str = Field(max_length=64, nullable=False)
    handler: str = Field(max_length=64, nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    status: EventStatus = Field(
        default=EventStatus.PENDING,
        sa_type=sa.Enum(
            EventStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    attempts: int = Field(default=0, nullable=False)
    available_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=2000)
    request_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HandledEffect(Entity, table=True):
    """One row per effect a handler has produced, keyed by a business key (e.g.
    `email:order_placed:<order id>`). Written in the same transaction as a database
    effect, or right after an external send and checked before it."""

    __tablename__ = "handled_effects"

    key: str = Field(max_length=255, unique=True, nullable=False)
    event_id: UUID | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from orderdesk.outbox.models import EventStatus, OutboxEvent


class EventPublic(BaseModel):
    id: UUID
    topic: str
    handler: str
    status: EventStatus
    attempts: int
    available_at: datetime
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    payload: dict[str, Any]

    @classmethod
    def from_event(cls, event: OutboxEvent) -> EventPublic:
        return cls(
            id=event.id,
            topic=event.topic,
            handler=event.handler,
            status=event.status,
            attempts=event.attempts,
            available_at=event.available_at,
            last_error=event.last_error,
            created_at=event.created_at,
            completed_at=event.completed_at,
            payload=event.payload,
        )

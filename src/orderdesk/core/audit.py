"""The audit log: who did what to which entity, written in the same transaction as
the change itself, so an action and its record commit or vanish together."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.ids import new_id
from orderdesk.core.models import Entity, UTCDateTime
from orderdesk.core.uow import UnitOfWork


class AuditLog(Entity, table=True):
    __tablename__ = "audit_log"

    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    actor_id: UUID | None = Field(default=None, index=True)
    action: str = Field(max_length=64, nullable=False)
    entity_type: str = Field(max_length=64, nullable=False)
    entity_id: UUID = Field(nullable=False, index=True)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    request_id: str | None = Field(default=None, max_length=128)


_audit_log = AuditLog.__table__  # type: ignore[attr-defined]


def record(
    uow: UnitOfWork,
    *,
    action: str,
    entity_type: str,
    entity_id: UUID,
    changes: dict[str, Any] | None = None,
    actor_id: UUID | None = None,
) -> None:
    uow.stage(
        _audit_log,
        {
            "id": new_id(),
            "occurred_at": uow.now(),
            "actor_id": actor_id or uow.actor_id,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "changes": changes or {},
            "request_id": uow.request_id,
        },
    )

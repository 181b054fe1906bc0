"""The `idempotency_keys` table: one row per (caller, key), claimed in the
transaction of the request it guards (see `orderdesk.idempotency.http`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import Entity, UTCDateTime


class IdempotencyRecord(Entity, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("owner_id", "key"),)

    owner_id: UUID = Field(nullable=False)
    key: str = Field(max_length=255, nullable=False)
    fingerprint: str = Field(max_length=64, nullable=False)
    # Both NULL while the claiming request is still running.
    status_code: int | None = Field(default=None)
    response_body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)

"""Security records: refresh tokens (rotated in families) and single-use tokens for
email verification and password reset. Tokens are stored only as SHA-256 digests."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import Entity, UTCDateTime


class RefreshToken(Entity, table=True):
    __tablename__ = "refresh_tokens"

    user_id: UUID = Field(foreign_key="users.id", index=True, nullable=False)
    # Every token rotated from one sign-in shares the family; reuse revokes it whole.
    family_id: UUID = Field(index=True, nullable=False)
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    issued_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # The family's absolute end: rotation never extends it.
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105


class OneTimeToken(Entity, table=True):
    __tablename__ = "one_time_tokens"

    user_id: UUID = Field(foreign_key="users.id", index=True, nullable=False)
    purpose: TokenPurpose = Field(
        sa_type=sa.Enum(
            TokenPurpose,
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    issued_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)

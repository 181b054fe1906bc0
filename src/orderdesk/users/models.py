from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from orderdesk.core.models import SoftDeletable, UTCDateTime


class User(SoftDeletable, table=True):
    __tablename__ = "users"

    # Stored normalised (lower case), so uniqueness holds regardless of case; deleted
    # accounts keep theirs, so an address is never reused by someone else.
    email: str = Field(max_length=320, unique=True)
    full_name: str = Field(max_length=200)
    password_hash: str = Field(max_length=255)
    role: Role = Field(
        default=Role.CUSTOMER,
        sa_type=sa.Enum(
            Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
        ),
        nullable=False,
    )
    is_active: bool = Field(default=True, nullable=False)
    email_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # Part of every access token; bumping it makes all outstanding tokens fail.
    token_version: int = Field(default=0, nullable=False)

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def can_sign_in(self) -> bool:
        return self.is_active and self.deleted_at is None

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import SoftDeletable, UTCDateTime


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


class Permission(StrEnum):
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    CATALOG_MANAGE = "catalog:manage"
    ORDERS_READ_ALL = "orders:read_all"
    ORDERS_MANAGE = "orders:manage"
    EVENTS_MANAGE = "events:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


_STAFF_PERMISSIONS = frozenset(
    {
        Permission.USERS_READ,
        Permission.CATALOG_MANAGE,
        Permission.ORDERS_READ_ALL,
        Permission.ORDERS_MANAGE,
    }
)
# Admins can do everything staff can, and manage users.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CUSTOMER: frozenset(),
    Role.STAFF: _STAFF_PERMISSIONS,
    Role.ADMIN: _STAFF_PERMISSIONS
    | {Permission.USERS_MANAGE, Permission.EVENTS_MANAGE, Permission.WEBHOOKS_MANAGE},
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: all that authorisation needs, without loading the
    account. Routes that change the account load the `User` itself."""

    id: UUID
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


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

"""Authorisation: roles, the permissions each grants, and the `Principal` a request
acts for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


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

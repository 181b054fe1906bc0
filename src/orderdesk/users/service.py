"""Account use cases: the caller's own profile, and staff and admin management."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from orderdesk.auth import service as auth_service
from orderdesk.auth.errors import InvalidAccessToken
from orderdesk.auth.permissions import Principal, Role
from orderdesk.container import Container
from orderdesk.core import audit
from orderdesk.core.pagination import Page, decode_id_cursor, page_by_id
from orderdesk.core.reads import PrimaryReads, ReplicaReads
from orderdesk.core.uow import UnitOfWork
from orderdesk.users import repository as user_repository
from orderdesk.users.errors import (
    CurrentPasswordRequired,
    OwnRoleChange,
    UserNotFound,
    WrongCurrentPassword,
)
from orderdesk.users.models import User
from orderdesk.users.schemas import UserAdminUpdate, UserPublic, UserSelfUpdate


async def update_profile(
    uow: UnitOfWork, c: Container, *, user: User, data: UserSelfUpdate
) -> UserPublic:
    if data.full_name is not None:
        user.full_name = data.full_name
    if data.new_password is not None:
        if data.current_password is None:
            raise CurrentPasswordRequired()
        valid, _ = await c.hasher.verify(data.current_password, user.password_hash)
        if not valid:
            raise WrongCurrentPassword()
        await auth_service.set_password(uow, c, user=user, new_password=data.new_password)
    await uow.flush()
    return UserPublic.from_user(user)


async def delete_account(uow: UnitOfWork, *, user: User) -> None:
    """Soft delete: the row stays (and keeps its email taken); sign-in stops working."""
    user.deleted_at = uow.now()
    await auth_service.end_all_sessions(uow, user=user)
    audit.record(uow, action="user.deleted", entity_type="user", entity_id=user.id)
    await uow.flush()


async def get_profile(reads: PrimaryReads, *, user_id: UUID) -> UserPublic:
    """The caller's own account, as committed (never a lagging replica's copy)."""
    async with reads.connection() as connection:
        user = await user_repository.get_live(connection, user_id)
    if user is None:  # deleted or deactivated since the token was checked
        raise InvalidAccessToken()
    return UserPublic.from_user(user)


async def list_users(
    reads: ReplicaReads,
    *,
    limit: int,
    cursor: str | None,
    role: Role | None = None,
    is_active: bool | None = None,
) -> Page[UserPublic]:
    after = decode_id_cursor(cursor, kind="users")
    async with reads.session() as session:
        rows = await user_repository.list_page(
            session, limit=limit, after=after, role=role, is_active=is_active
        )
    return page_by_id(rows, limit=limit, item=UserPublic.from_user, kind="users")


async def update_user(
    uow: UnitOfWork, *, actor: Principal, user_id: UUID, data: UserAdminUpdate
) -> UserPublic:
    user = await user_repository.get_by_id(uow.session, user_id)
    if user is None:
        raise UserNotFound()
    if user.id == actor.id and (data.role is not None or data.is_active is not None):
        raise OwnRoleChange()
    changes: dict[str, Any] = {}
    if data.role is not None and data.role != user.role:
        changes["role"] = {"from": user.role.value, "to": data.role.value}
        user.role = data.role
        # Tokens carry the role: make the old ones fail rather than outlive the change.
        await auth_service.end_all_sessions(uow, user=user)
    if data.is_active is not None and data.is_active != user.is_active:
        changes["is_active"] = {"from": user.is_active, "to": data.is_active}
        user.is_active = data.is_active
        if not data.is_active:
            await auth_service.end_all_sessions(uow, user=user)
    if changes:
        action = "user.role_changed" if "role" in changes else "user.activation_changed"
        audit.record(uow, action=action, entity_type="user", entity_id=user.id, changes=changes)
        await uow.flush()
    return UserPublic.from_user(user)

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from orderdesk.auth.dependencies import AdminUser, CurrentAccount, CurrentUser, StaffUser
from orderdesk.auth.errors import WeakPassword
from orderdesk.auth.permissions import Role
from orderdesk.container import ContainerDep
from orderdesk.core.deps import Cursor, Limit, PrimaryReadsDep, ReplicaReadsDep, UnitOfWorkDep
from orderdesk.core.openapi import problems
from orderdesk.core.pagination import DEFAULT_LIMIT, InvalidCursor, Page
from orderdesk.users import service as user_service
from orderdesk.users.errors import (
    CurrentPasswordRequired,
    OwnRoleChange,
    UserNotFound,
    WrongCurrentPassword,
)
from orderdesk.users.schemas import UserAdminUpdate, UserPublic, UserSelfUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
async def read_me(caller: CurrentUser, reads: PrimaryReadsDep) -> UserPublic:
    return await user_service.get_profile(reads, user_id=caller.id)


@router.patch("/me")
@problems(WeakPassword, WrongCurrentPassword, CurrentPasswordRequired)
async def update_me(
    data: UserSelfUpdate, user: CurrentAccount, uow: UnitOfWorkDep, c: ContainerDep
) -> UserPublic:
    return await user_service.update_profile(uow, c, user=user, data=data)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_me(user: CurrentAccount, uow: UnitOfWorkDep) -> None:
    await user_service.delete_account(uow, user=user)


@router.get("")
@problems(InvalidCursor)
async def list_users(
    _: StaffUser,
    reads: ReplicaReadsDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    role: Role | None = None,
    is_active: bool | None = None,
) -> Page[UserPublic]:
    return await user_service.list_users(
        reads, limit=limit, cursor=cursor, role=role, is_active=is_active
    )


@router.patch("/{user_id}")
@problems(UserNotFound, OwnRoleChange)
async def update_user(
    user_id: UUID, data: UserAdminUpdate, admin: AdminUser, uow: UnitOfWorkDep
) -> UserPublic:
    return await user_service.update_user(uow, actor=admin, user_id=user_id, data=data)

"""Who is calling, and may they: `CurrentUser` and permission checks.

Bearer tokens come from the `Authorization` header; browsers may instead send the
HttpOnly session cookie, in which case every unsafe method must also carry the
session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from orderdesk.auth import service as auth_service
from orderdesk.auth.errors import CsrfFailed, InvalidAccessToken
from orderdesk.core.deps import ContainerDep, UnitOfWorkDep
from orderdesk.core.errors import Forbidden
from orderdesk.users.models import Permission, User

ACCESS_COOKIE = "orderdesk_access"
REFRESH_COOKIE = "orderdesk_refresh"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_token = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def current_user(
    request: Request,
    uow: UnitOfWorkDep,
    c: ContainerDep,
    bearer: Annotated[str | None, Depends(bearer_token)],
) -> User:
    token = bearer or request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise InvalidAccessToken()
    user, session_id = await auth_service.authenticate(uow, c, access_token=token)
    if bearer is None and request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER, "")
        if session_id is None or not c.tokens.check_csrf(session_id, presented):
            raise CsrfFailed()
    request.state.user_id = user.id
    request.state.session_id = session_id
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def optional_user(
    request: Request,
    uow: UnitOfWorkDep,
    c: ContainerDep,
    bearer: Annotated[str | None, Depends(bearer_token)],
) -> User | None:
    """The caller on routes open to anyone; credentials, when sent, must be valid."""
    if not bearer and ACCESS_COOKIE not in request.cookies:
        return None
    return await current_user(request, uow, c, bearer)


OptionalUser = Annotated[User | None, Depends(optional_user)]


def require(permission: Permission) -> Callable[[User], Awaitable[User]]:
    async def check(user: CurrentUser) -> User:
        if not user.can(permission):
            raise Forbidden(f"This needs the '{permission.value}' permission.")
        return user

    return check


StaffUser = Annotated[User, Depends(require(Permission.USERS_READ))]
AdminUser = Annotated[User, Depends(require(Permission.USERS_MANAGE))]

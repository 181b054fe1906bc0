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
from orderdesk.auth.permissions import Permission, Principal
from orderdesk.container import ContainerDep
from orderdesk.core.deps import UnitOfWorkDep, bind_actor
from orderdesk.core.errors import Forbidden
from orderdesk.core.openapi import problems
from orderdesk.users import repository as user_repository
from orderdesk.users.models import User

ACCESS_COOKIE = "orderdesk_access"
REFRESH_COOKIE = "orderdesk_refresh"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_token = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@problems(InvalidAccessToken, CsrfFailed)
async def current_user(
    request: Request,
    c: ContainerDep,
    bearer: Annotated[str | None, Depends(bearer_token)],
) -> Principal:
    token = bearer or request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise InvalidAccessToken()
    # Primary reads made here rather than taken as a dependency: every authenticated
    # request runs this, and a dependency costs FastAPI a resolution per request.
    reads = c.database.primary_reads()
    principal, session_id = await auth_service.authenticate(reads, c, access_token=token)
    if bearer is None and request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER, "")
        if session_id is None or not c.tokens.check_csrf(session_id, presented):
            raise CsrfFailed()
    request.state.session_id = session_id
    bind_actor(request, principal.id)
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


@problems(InvalidAccessToken)
async def current_account(principal: CurrentUser, uow: UnitOfWorkDep) -> User:
    """The caller's account itself, in the request's unit of work, for the routes
    that read or change more of it than its id and role."""
    user = await user_repository.get_by_id(uow.session, principal.id)
    if user is None:  # deleted or deactivated since the token was checked
        raise InvalidAccessToken()
    return user


CurrentAccount = Annotated[User, Depends(current_account)]


@problems(InvalidAccessToken, CsrfFailed)
async def optional_user(
    request: Request,
    c: ContainerDep,
    bearer: Annotated[str | None, Depends(bearer_token)],
) -> Principal | None:
    """The caller on routes open to anyone; credentials, when sent, must be valid."""
    if not bearer and ACCESS_COOKIE not in request.cookies:
        return None
    return await current_user(request, c, bearer)


OptionalUser = Annotated[Principal | None, Depends(optional_user)]


def require(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    @problems(Forbidden)
    async def check(principal: CurrentUser) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"This needs the '{permission.value}' permission.")
        return principal

    return check


StaffUser = Annotated[Principal, Depends(require(Permission.USERS_READ))]
AdminUser = Annotated[Principal, Depends(require(Permission.USERS_MANAGE))]

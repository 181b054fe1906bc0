from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from orderdesk.auth import service as auth_service
from orderdesk.auth.dependencies import (
    ACCESS_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    CurrentAccount,
    CurrentUser,
)
from orderdesk.auth.errors import (
    CsrfFailed,
    EmailTaken,
    InvalidCredentials,
    InvalidOneTimeToken,
    InvalidRefreshToken,
    RefreshTokenReused,
    WeakPassword,
)
from orderdesk.auth.forms import PasswordForm
from orderdesk.auth.schemas import (
    EmailVerification,
    IssuedTokens,
    LogoutRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    SessionPublic,
    TokenPair,
)
from orderdesk.container import Container, ContainerDep
from orderdesk.core.deps import ClientAddress, UnitOfWorkDep
from orderdesk.core.errors import TooManyRequests
from orderdesk.core.openapi import links, problems
from orderdesk.users.schemas import UserCreate, UserPublic

router = APIRouter(prefix="/auth", tags=["auth"])
REFRESH_COOKIE_PATH = "/api/v1/auth"


async def no_store(response: Response) -> None:
    """Answers that carry tokens are never cached (RFC 6749 §5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NoStore = [Depends(no_store)]


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=links(201, updateUser={"user_id": "$response.body#/id"}),
)
@problems(EmailTaken, WeakPassword, TooManyRequests)
async def register_account(
    data: UserCreate, uow: UnitOfWorkDep, c: ContainerDep, address: ClientAddress
) -> UserPublic:
    user = await auth_service.sign_up(uow, c, data=data, address=address)
    return UserPublic.from_user(user)


@router.post("/token", dependencies=NoStore)
@problems(InvalidCredentials, TooManyRequests)
async def issue_token(
    form: PasswordForm, uow: UnitOfWorkDep, c: ContainerDep, address: ClientAddress
) -> TokenPair:
    """OAuth2 password flow: `username` is the account's email."""
    issued = await auth_service.sign_in(
        uow, c, email=form.username, password=form.password, address=address
    )
    return TokenPair.from_issued(issued)


@router.post("/refresh", dependencies=NoStore)
@problems(InvalidRefreshToken, RefreshTokenReused)
async def refresh_tokens(data: RefreshRequest, uow: UnitOfWorkDep, c: ContainerDep) -> TokenPair:
    """Rotate: the presented token is spent and a new pair returned. Presenting a spent
    token again revokes its whole session."""
    issued = await auth_service.rotate_refresh_token(uow, c, refresh_token=data.refresh_token)
    return TokenPair.from_issued(issued)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(data: LogoutRequest, user: CurrentUser, uow: UnitOfWorkDep) -> None:
    await auth_service.sign_out(uow, user=user, refresh_token=data.refresh_token)


@router.post("/session", dependencies=NoStore)
@problems(InvalidCredentials, TooManyRequests)
async def start_session(
    form: PasswordForm,
    response: Response,
    uow: UnitOfWorkDep,
    c: ContainerDep,
    address: ClientAddress,
) -> SessionPublic:
    """Cookie sign-in for browsers: HttpOnly cookies plus a CSRF token that every
    unsafe request must echo in `X-CSRF-Token`."""
    issued = await auth_service.sign_in(
        uow, c, email=form.username, password=form.password, address=address
    )
    _set_session_cookies(response, c, issued)
    return SessionPublic(csrf_token=c.tokens.csrf_token_for(issued.session_id))


@router.post("/session/refresh", dependencies=NoStore)
@problems(InvalidRefreshToken, RefreshTokenReused, CsrfFailed)
async def refresh_session(
    request: Request, response: Response, uow: UnitOfWorkDep, c: ContainerDep
) -> SessionPublic:
    """Rotate a cookie session's tokens (the browser twin of `/auth/refresh`). Needs
    the session's CSRF token, checked before anything changes."""
    presented = request.cookies.get(REFRESH_COOKIE)
    if not presented:
        raise InvalidRefreshToken()
    issued = await auth_service.rotate_refresh_token(
        uow, c, refresh_token=presented, csrf_token=request.headers.get(CSRF_HEADER, "")
    )
    _set_session_cookies(response, c, issued)
    return SessionPublic(csrf_token=c.tokens.csrf_token_for(issued.session_id))


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def end_session(
    request: Request, response: Response, _: CurrentUser, uow: UnitOfWorkDep, c: ContainerDep
) -> None:
    session_id = request.state.session_id
    if session_id is not None:
        await auth_service.end_session(uow, session_id=session_id)
    response.delete_cookie(ACCESS_COOKIE, path="/", secure=c.settings.secure_cookies, httponly=True)
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, secure=c.settings.secure_cookies, httponly=True
    )


@router.post("/verify-email", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
@problems(InvalidOneTimeToken)
async def verify_email(data: EmailVerification, uow: UnitOfWorkDep) -> None:
    await auth_service.verify_email(uow, token=data.token)


@router.post("/verify-email/resend", status_code=status.HTTP_202_ACCEPTED)
@problems(TooManyRequests)
async def resend_verification(
    user: CurrentAccount, uow: UnitOfWorkDep, c: ContainerDep, address: ClientAddress
) -> None:
    await auth_service.resend_email_verification(uow, c, user=user, address=address)


@router.post("/password-reset", status_code=status.HTTP_202_ACCEPTED)
async def request_password_reset(
    data: PasswordResetRequest, uow: UnitOfWorkDep, c: ContainerDep, address: ClientAddress
) -> None:
    """Always 202, whether or not the email has an account, and also when throttled
    (then nothing is sent)."""
    await auth_service.request_password_reset(uow, c, email=data.email, address=address)


@router.post(
    "/password-reset/confirm", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
@problems(InvalidOneTimeToken, WeakPassword)
async def confirm_password_reset(
    data: PasswordResetConfirm, uow: UnitOfWorkDep, c: ContainerDep
) -> None:
    await auth_service.reset_password(uow, c, token=data.token, new_password=data.new_password)


def _set_session_cookies(response: Response, c: Container, issued: IssuedTokens) -> None:
    secure = c.settings.secure_cookies
    response.set_cookie(
        ACCESS_COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        issued.refresh_token,
        max_age=c.settings.refresh_token_ttl_seconds,
        path=REFRESH_COOKIE_PATH,
        httponly=True,
        secure=secure,
        samesite="lax",
    )

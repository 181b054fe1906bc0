"""Identity use cases: registration, sign-in, token rotation, sign-out, email
verification and password reset. Every function works inside the caller's unit of
work and only flushes."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from orderdesk.auth import repository as token_repository
from orderdesk.auth.errors import (
    CsrfFailed,
    EmailTaken,
    InvalidAccessToken,
    InvalidCredentials,
    InvalidOneTimeToken,
    InvalidRefreshToken,
    RefreshTokenReused,
    WeakPassword,
)
from orderdesk.auth.models import OneTimeToken, RefreshToken, TokenPurpose
from orderdesk.auth.passwords import password_weakness
from orderdesk.auth.permissions import Principal, Role
from orderdesk.auth.schemas import IssuedTokens
from orderdesk.auth.tokens import InvalidToken, hash_token, new_opaque_token
from orderdesk.container import Container
from orderdesk.core import audit
from orderdesk.core.ids import new_id
from orderdesk.core.reads import PrimaryReads
from orderdesk.core.uow import UnitOfWork
from orderdesk.outbox import service as outbox
from orderdesk.outbox.events import (
    EmailVerificationRequested,
    PasswordResetRequested,
    UserRegistered,
)
from orderdesk.users import repository as user_repository
from orderdesk.users.models import User
from orderdesk.users.schemas import UserCreate


async def register(
    uow: UnitOfWork,
    c: Container,
    *,
    data: UserCreate,
    role: Role = Role.CUSTOMER,
    email_verified: bool = False,
) -> User:
    """Create an account. `email_verified` is for accounts an operator creates and
    vouches for (the CLI's admins); sign-ups get a verification message instead."""
    await ensure_strong_password(c, data.password, user_inputs=[data.email, data.full_name])
    if await user_repository.email_exists(uow.session, data.email):
        raise EmailTaken()
    user = User(
        email=data.email,
        full_name=data.full_name,
        password_hash=await c.hasher.hash(data.password),
        role=role,
        email_verified_at=uow.now() if email_verified else None,
    )
    uow.session.add(user)
    try:
        await uow.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same email won
        raise EmailTaken() from exc
    audit.record(
        uow,
        action="user.registered",
        entity_type="user",
        entity_id=user.id,
        actor_id=user.id,
        changes={"role": role.value},
    )
    outbox.emit(uow, UserRegistered(user_id=user.id))
    await send_email_verification(uow, user=user)
    return user


async def sign_up(uow: UnitOfWork, c: Container, *, data: UserCreate, address: str) -> User:
    """Self-service registration: throttled per client address and per email before
    the password is judged or hashed (both cost CPU) and a message is queued."""
    await c.limits.signup.enforce(target=data.email, address=address)
    return await register(uow, c, data=data)


async def ensure_strong_password(
    c: Container, password: str, *, user_inputs: list[str], field: str = "password"
) -> None:
    weakness = await password_weakness(
        password, user_inputs=user_inputs, min_score=c.settings.password_min_score
    )
    if weakness:
        raise WeakPassword(weakness, field=[field])


async def sign_in(
    uow: UnitOfWork, c: Container, *, email: str, password: str, address: str
) -> IssuedTokens:
    account = email.strip().lower()
    await c.throttle.check(account=account, address=address)
    user = await user_repository.get_by_email(uow.session, account)
    # Always verify, against a dummy hash when there is no account, so an unknown
    # email costs as long as a wrong password and gets the same answer.
    valid, upgraded_hash = await c.hasher.verify(password, user.password_hash if user else None)
    if user is None or not valid or not user.can_sign_in:
        await c.throttle.record_failure(account=account, address=address)
        raise InvalidCredentials()
    await c.throttle.record_success(account=account, address=address)
    if upgraded_hash is not None:
        user.password_hash = upgraded_hash
    return await _start_session(uow, c, user=user)


async def _start_session(uow: UnitOfWork, c: Container, *, user: User) -> IssuedTokens:
    now = uow.now()
    expires_at = now + timedelta(seconds=c.settings.refresh_token_ttl_seconds)
    return await _issue(uow, c, user=user, family_id=new_id(), expires_at=expires_at)


async def _issue(
    uow: UnitOfWork, c: Container, *, user: User, family_id: UUID, expires_at: datetime
) -> IssuedTokens:
    now = uow.now()
    refresh = new_opaque_token()
    uow.session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_token(refresh),
            issued_at=now,
            expires_at=expires_at,
        )
    )
    await uow.flush()
    access = c.tokens.issue_access_token(
        user_id=user.id,
        role=user.role.value,
        token_version=user.token_version,
        session_id=family_id,
        now=now,
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(c.tokens.ttl.total_seconds()),
        session_id=family_id,
    )


async def rotate_refresh_token(
    uow: UnitOfWork, c: Container, *, refresh_token: str, csrf_token: str | None = None
) -> IssuedTokens:
    """Spend a refresh token for a new pair in the same family. Cookie sessions pass
    the CSRF token they were given, which is checked before anything changes."""
    now = uow.now()
    stored = await token_repository.get_refresh_token(uow.session, hash_token(refresh_token))
    if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        raise InvalidRefreshToken()
    if csrf_token is not None and not c.tokens.check_csrf(stored.family_id, csrf_token):
        raise CsrfFailed()
    claimed = stored.rotated_at is None and await token_repository.claim_refresh_token(
        uow.session, stored.id, now=now
    )
    if not claimed:
        # Used before (or by a concurrent request right now): assume it leaked.
        await token_repository.revoke_family(uow.session, stored.family_id, now=now)
        raise RefreshTokenReused()
    user = await user_repository.get_by_id(uow.session, stored.user_id)
    if user is None or not user.can_sign_in:
        raise InvalidRefreshToken()
    return await _issue(uow, c, user=user, family_id=stored.family_id, expires_at=stored.expires_at)


async def sign_out(uow: UnitOfWork, *, user: Principal, refresh_token: str) -> None:
    """Revoke the session a refresh token belongs to. Tokens of other users, or
    unknown ones, are ignored, so the answer reveals nothing about them."""
    stored = await token_repository.get_refresh_token(uow.session, hash_token(refresh_token))
    if stored is not None and stored.user_id == user.id:
        await token_repository.revoke_family(uow.session, stored.family_id, now=uow.now())


async def end_session(uow: UnitOfWork, *, session_id: UUID) -> None:
    await token_repository.revoke_family(uow.session, session_id, now=uow.now())


async def end_all_sessions(uow: UnitOfWork, *, user: User) -> None:
    """Revoke every refresh family and make every outstanding access token fail."""
    user.token_version += 1
    await token_repository.revoke_all_for_user(uow.session, user.id, now=uow.now())


async def authenticate(
    reads: PrimaryReads, c: Container, *, access_token: str
) -> tuple[Principal, UUID | None]:
    """Who an access token speaks for, checked against the primary so that
    deactivation, deletion and password changes take effect at once. On its own
    short connection, taken only once the token's signature and claims hold, and
    given back before the route runs: a request never holds two at once."""
    try:
        claims = c.tokens.decode_access_token(access_token)
    except InvalidToken as exc:
        raise InvalidAccessToken() from exc
    async with reads.connection() as connection:
        principal = await user_repository.principal_for(
            connection, claims.user_id, token_version=claims.token_version
        )
    if principal is None:
        raise InvalidAccessToken()
    return principal, claims.session_id


async def resend_email_verification(
    uow: UnitOfWork, c: Container, *, user: User, address: str
) -> None:
    await c.limits.verification_resend.enforce(target=str(user.id), address=address)
    await send_email_verification(uow, user=user)


async def send_email_verification(uow: UnitOfWork, *, user: User) -> None:
    """Queue a verification message; the token is made when it is sent."""
    if user.email_verified_at is None:
        outbox.emit(uow, EmailVerificationRequested(user_id=user.id))


async def verify_email(uow: UnitOfWork, *, token: str) -> None:
    stored = await _consume(uow, token, purpose=TokenPurpose.VERIFY_EMAIL)
    user = await user_repository.get_by_id(uow.session, stored.user_id)
    if user is None:
        raise InvalidOneTimeToken()
    if user.email_verified_at is None:
        user.email_verified_at = uow.now()
        audit.record(uow, action="user.email_verified", entity_type="user", entity_id=user.id)


async def request_password_reset(
    uow: UnitOfWork, c: Container, *, email: str, address: str
) -> None:
    """Queue a reset message if the account exists and the request is within the
    limits; the caller answers the same in every case (a 429 would tell that the
    email is being reset), and the token is made when the message is sent. The
    limit counts by email, whether or not it has an account, for the same reason."""
    if await c.limits.password_reset.admit(target=email, address=address) is not None:
        return
    user = await user_repository.get_by_email(uow.session, email)
    if user is None or not user.can_sign_in:
        return
    outbox.emit(uow, PasswordResetRequested(user_id=user.id))


async def reset_password(uow: UnitOfWork, c: Container, *, token: str, new_password: str) -> None:
    stored = await _consume(uow, token, purpose=TokenPurpose.RESET_PASSWORD)
    user = await user_repository.get_by_id(uow.session, stored.user_id)
    if user is None or not user.can_sign_in:
        raise InvalidOneTimeToken()
    await set_password(uow, c, user=user, new_password=new_password)
    # Receiving the token proves control of the mailbox.
    user.email_verified_at = user.email_verified_at or uow.now()


async def set_password(uow: UnitOfWork, c: Container, *, user: User, new_password: str) -> None:
    await ensure_strong_password(
        c, new_password, user_inputs=[user.email, user.full_name], field="new_password"
    )
    user.password_hash = await c.hasher.hash(new_password)
    await end_all_sessions(uow, user=user)
    audit.record(uow, action="user.password_changed", entity_type="user", entity_id=user.id)


async def new_one_time_token(
    uow: UnitOfWork, c: Container, *, user: User, purpose: TokenPurpose
) -> str:
    """A fresh single-use token for `purpose`; earlier unused ones stop working."""
    ttl = (
        c.settings.email_verification_ttl_seconds
        if purpose is TokenPurpose.VERIFY_EMAIL
        else c.settings.password_reset_ttl_seconds
    )
    now = uow.now()
    await token_repository.expire_unused_tokens(uow.session, user.id, purpose=purpose, now=now)
    token = new_opaque_token()
    uow.session.add(
        OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(token),
            issued_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    await uow.flush()
    return token


async def purge_expired_tokens(uow: UnitOfWork) -> int:
    """Expired refresh and single-use tokens are of no use to anyone: a periodic job
    deletes them. Returns how many."""
    return await token_repository.purge_expired_tokens(uow.session, now=uow.now())


async def _consume(uow: UnitOfWork, token: str, *, purpose: TokenPurpose) -> OneTimeToken:
    stored = await token_repository.get_one_time_token(
        uow.session, hash_token(token), purpose=purpose
    )
    if stored is None or not await token_repository.consume_one_time_token(
        uow.session, stored.id, now=uow.now()
    ):
        raise InvalidOneTimeToken()
    return stored

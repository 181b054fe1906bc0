from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.auth.permissions import Principal, Role
from orderdesk.users.models import User

_users = User.__table__  # type: ignore[attr-defined]
# What every authenticated request reads: three columns of one row, no password hash.
# Built once: a statement made per call costs SQLAlchemy a cache key each time.
_PRINCIPAL = sa.select(_users.c.id, _users.c.role, _users.c.token_version).where(
    _users.c.id == sa.bindparam("user_id"), _users.c.is_active, _users.c.deleted_at.is_(None)
)


async def principal_for(
    connection: AsyncConnection, user_id: UUID, *, token_version: int
) -> Principal | None:
    """The account an access token names, if it may still act: active, not deleted,
    and its tokens not revoked since this one was issued."""
    row = (await connection.execute(_PRINCIPAL, {"user_id": user_id})).first()
    if row is None or row.token_version != token_version:
        return None
    return Principal(id=row.id, role=Role(row.role))


_CONTACT = sa.select(_users.c.email, _users.c.full_name).where(
    _users.c.id == sa.bindparam("user_id")
)


async def contact_of(connection: AsyncConnection, user_id: UUID) -> sa.Row[str, str] | None:
    """Where to write to an account (`email`, `full_name`), deleted or not."""
    return (await connection.execute(_CONTACT, {"user_id": user_id})).first()


_LIVE = sa.select(_users).where(
    _users.c.id == sa.bindparam("user_id"), _users.c.deleted_at.is_(None)
)


async def get_live(connection: AsyncConnection, user_id: UUID) -> User | None:
    """The live account with this id, read on a connection (no session): an entity
    detached from any unit of work, to read, never to change."""
    row = (await connection.execute(_LIVE, {"user_id": user_id})).first()
    return None if row is None else User(**row._mapping)


async def get_by_id(session: AsyncSession, user_id: UUID) -> User | None:
    """The live account with this id; deleted accounts are not found."""
    user = await session.get(User, user_id)
    return None if user is None or user.is_deleted else user


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    """The live account with this (normalised) email; deleted accounts are not found."""
    statement = select(User).where(User.email == email, col(User.deleted_at).is_(None))
    return (await session.exec(statement)).first()


async def email_exists(session: AsyncSession, email: str) -> bool:
    """Whether any account, deleted or not, holds this email."""
    statement = select(User.id).where(User.email == email)
    return (await session.exec(statement)).first() is not None


async def count(session: AsyncSession) -> int:
    return (await session.exec(select(func.count()).select_from(User))).one()


async def list_page(
    session: AsyncSession,
    *,
    limit: int,
    after: UUID | None = None,
    role: Role | None = None,
    is_active: bool | None = None,
) -> Sequence[User]:
    """Live users in creation order (UUIDv7 ids sort by time), one row past `limit`
    so the caller knows whether another page exists."""
    statement = select(User).where(col(User.deleted_at).is_(None))
    if after is not None:
        statement = statement.where(col(User.id) > after)
    if role is not None:
        statement = statement.where(User.role == role)
    if is_active is not None:
        statement = statement.where(User.is_active == is_active)
    statement = statement.order_by(col(User.id)).limit(limit + 1)
    return (await session.exec(statement)).all()

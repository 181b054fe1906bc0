"""Queries for refresh and single-use tokens. Consuming a token is one conditional
UPDATE, so two concurrent requests presenting the same token cannot both win."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Update, delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.auth.models import OneTimeToken, RefreshToken, TokenPurpose


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    statement = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.exec(statement)).first()


async def claim_refresh_token(session: AsyncSession, token_id: UUID, *, now: datetime) -> bool:
    """Mark a refresh token rotated if nobody has used or revoked it yet."""
    statement = (
        update(RefreshToken)
        .where(
            col(RefreshToken.id) == token_id,
            col(RefreshToken.rotated_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(rotated_at=now)
    )
    return await _changed_one(session, statement)


async def revoke_family(session: AsyncSession, family_id: UUID, *, now: datetime) -> None:
    statement = (
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    await session.exec(statement)


async def revoke_all_for_user(session: AsyncSession, user_id: UUID, *, now: datetime) -> None:
    statement = (
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    await session.exec(statement)


async def get_one_time_token(
    session: AsyncSession, token_hash: str, *, purpose: TokenPurpose
) -> OneTimeToken | None:
    statement = select(OneTimeToken).where(
        OneTimeToken.token_hash == token_hash, OneTimeToken.purpose == purpose
    )
    return (await session.exec(statement)).first()


async def consume_one_time_token(session: AsyncSession, token_id: UUID, *, now: datetime) -> bool:
    """Use a token once: succeeds only if it is unused and unexpired at this moment."""
    statement = (
        update(OneTimeToken)
        .where(
            col(OneTimeToken.id) == token_id,
            col(OneTimeToken.used_at).is_(None),
            col(OneTimeToken.expires_at) > now,
        )
        .values(used_at=now)
    )
    return await _changed_one(session, statement)


async def expire_unused_tokens(
    session: AsyncSession, user_id: UUID, *, purpose: TokenPurpose, now: datetime
) -> None:
    """Invalidate earlier tokens of one purpose when a new one is sent."""
    statement = (
        update(OneTimeToken)
        .where(
            col(OneTimeToken.user_id) == user_id,
            col(OneTimeToken.purpose) == purpose,
            col(OneTimeToken.used_at).is_(None),
        )
        .values(used_at=now)
    )
    await session.exec(statement)


async def purge_expired_tokens(session: AsyncSession, *, now: datetime) -> int:
    """Delete refresh and single-use tokens past their expiry; how many."""
    purged = 0
    for model in (RefreshToken, OneTimeToken):
        result = await session.exec(delete(model).where(col(model.expires_at) < now))
        purged += int(result.rowcount)
    return purged


async def _changed_one(session: AsyncSession, statement: Update) -> bool:
    result = await session.exec(statement)
    return result.rowcount == 1

"""Every query on `idempotency_keys`. The statements are built once per dialect,
with bind parameters, so SQLAlchemy derives no cache key per request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from orderdesk.idempotency.models import IdempotencyRecord

_keys = IdempotencyRecord.__table__  # type: ignore[attr-defined]


def _claim_statement(insert: Callable[[sa.Table], Any]) -> Any:
    """Insert the key's row, or take over an expired one (`excluded` is the new row),
    returning its id; no row back when a live row holds the key."""
    statement = insert(_keys).values(
        id=sa.bindparam("id"),
        owner_id=sa.bindparam("owner_id"),
        key=sa.bindparam("key"),
        fingerprint=sa.bindparam("fingerprint"),
        status_code=None,
        response_body=None,
        created_at=sa.bindparam("now"),
        expires_at=sa.bindparam("expires_at"),
    )
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_keys.c.owner_id, _keys.c.key],
        set_={
            "fingerprint": new.fingerprint,
            "status_code": None,
            "response_body": None,
            "created_at": new.created_at,
            "expires_at": new.expires_at,
        },
        where=_keys.c.expires_at <= new.created_at,
    ).returning(_keys.c.id)


_CLAIM = {
    "postgresql": _claim_statement(postgresql.insert),
    "sqlite": _claim_statement(sqlite.insert),
}
_TRY_LOCK: SelectOfScalar[bool] = select(
    sa.func.pg_try_advisory_xact_lock(sa.bindparam("lock_id", type_=sa.BigInteger))
)
_STORE_RESPONSE = (
    sa.update(_keys)
    .where(_keys.c.id == sa.bindparam("claim"))
    .values(status_code=sa.bindparam("status_code"), response_body=sa.bindparam("body"))
)
_BY_KEY = select(IdempotencyRecord).where(
    col(IdempotencyRecord.owner_id) == sa.bindparam("owner_id"),
    col(IdempotencyRecord.key) == sa.bindparam("key"),
)


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def claim(
    session: AsyncSession,
    *,
    claim_id: UUID,
    owner_id: UUID,
    key: str,
    fingerprint: str,
    now: datetime,
    expires_at: datetime,
) -> UUID | None:
    """Claim the key in one statement that cannot fail on a duplicate (so no
    savepoint): the claimed row's id, or None when a live row already holds it."""
    params = {
        "id": claim_id,
        "owner_id": owner_id,
        "key": key,
        "fingerprint": fingerprint,
        "now": now,
        "expires_at": expires_at,
    }
    result = await session.exec(_CLAIM[dialect_of(session)], params=params)
    claimed: UUID | None = result.scalar_one_or_none()
    return claimed


async def try_advisory_lock(session: AsyncSession, lock_id: int) -> bool:
    """PostgreSQL only: take a transaction-scoped advisory lock if it is free,
    without waiting; False when another transaction holds it."""
    return bool((await session.exec(_TRY_LOCK, params={"lock_id": lock_id})).one())


async def store_response(
    session: AsyncSession, claim_id: UUID, *, status_code: int, body: bytes
) -> None:
    await session.exec(
        _STORE_RESPONSE, params={"claim": claim_id, "status_code": status_code, "body": body}
    )


async def get_by_key(session: AsyncSession, *, owner_id: UUID, key: str) -> IdempotencyRecord:
    """The live row that made a claim fail (it is there: the claim just saw it)."""
    return (await session.exec(_BY_KEY, params={"owner_id": owner_id, "key": key})).one()


async def purge_expired(session: AsyncSession, *, now: datetime) -> int:
    result = await session.exec(
        sa.delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= now)
    )
    return int(result.rowcount)


async def delete_claim(session: AsyncSession, claim_id: UUID) -> None:
    await session.exec(sa.delete(_keys).where(_keys.c.id == claim_id))

"""`Idempotency-Key`: a retried request replays the first response instead of acting
twice.

Keys are scoped to the caller. The first request claims its key by inserting a row
in the *same transaction* as its effect, so the unique constraint decides between
concurrent duplicates on every server process: on PostgreSQL a duplicate waits for
the first to commit, then replays its response; if the first fails, its claim rolls
back with it and the retry runs afresh. The response body is stored as the exact
bytes sent, so a replay is identical byte for byte. A request that fails (validation
or a domain error) stores nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

import sqlalchemy as sa
from fastapi import Header
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, col, select
from starlette.responses import Response

from orderdesk.core.errors import Conflict, DomainError, InvalidInput
from orderdesk.core.ids import new_id
from orderdesk.core.models import Entity, UTCDateTime
from orderdesk.core.uow import UnitOfWork

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"


class IdempotencyRecord(Entity, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("owner_id", "key"),)

    owner_id: UUID = Field(nullable=False)
    key: str = Field(max_length=255, nullable=False)
    fingerprint: str = Field(max_length=64, nullable=False)
    status_code: int | None = Field(default=None)
    response_body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


_keys = IdempotencyRecord.__table__  # type: ignore[attr-defined]


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"

    def __init__(self) -> None:
        super().__init__(self.title, field=["Idempotency-Key"])


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still being processed; retry later"


class IdempotencyKeyMissing(DomainError):
    status = 400
    code = "idempotency_key_required"
    title = "This request needs an Idempotency-Key header"


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(alias=IDEMPOTENCY_HEADER, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
    ] = None,
) -> str:
    if key is None:
        raise IdempotencyKeyMissing()
    return key


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """What makes two requests "the same": method, path and the parsed body (so
    whitespace and key order in the JSON do not matter)."""
    canonical = body.model_dump_json(round_trip=True).encode()
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def run_once(
    uow: UnitOfWork,
    *,
    owner_id: UUID,
    key: str,
    request_fingerprint: str,
    ttl: timedelta,
    status_code: int,
    action: Callable[[], Awaitable[BaseModel]],
) -> Response:
    """Run `action` once per (owner, key); later calls replay its stored response."""
    claim = await _claim(
        uow, owner_id=owner_id, key=key, request_fingerprint=request_fingerprint, ttl=ttl
    )
    if claim is None:
        return await _replay(uow, owner_id=owner_id, key=key, fp=request_fingerprint)
    result = await action()
    body = result.model_dump_json().encode()
    await uow.session.exec(
        sa.update(_keys)
        .where(_keys.c.id == claim)
        .values(status_code=status_code, response_body=body)
    )
    return Response(body, status_code=status_code, media_type="application/json")


async def _claim(
    uow: UnitOfWork, *, owner_id: UUID, key: str, request_fingerprint: str, ttl: timedelta
) -> UUID | None:
    """Insert the key's row, or take over an expired one, in one statement that cannot
    fail on a duplicate (so no savepoint). Returns the row's id, or None when a live
    row already holds the key: a retry to replay, or a conflicting request."""
    if not await _lock_key(uow, owner_id=owner_id, key=key):
        raise IdempotencyKeyInFlight()
    now = uow.now()
    fresh = {
        "fingerprint": request_fingerprint,
        "status_code": None,
        "response_body": None,
        "created_at": now,
        "expires_at": now + ttl,
    }
    insert = (
        postgresql.insert if uow.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    statement = (
        insert(_keys)
        .values(id=new_id(), owner_id=owner_id, key=key, **fresh)
        .on_conflict_do_update(
            index_elements=[_keys.c.owner_id, _keys.c.key],
            set_=fresh,
            where=_keys.c.expires_at <= now,
        )
        .returning(_keys.c.id)
    )
    claimed: UUID | None = (await uow.session.exec(statement)).scalar_one_or_none()
    return claimed


async def _lock_key(uow: UnitOfWork, *, owner_id: UUID, key: str) -> bool:
    """On PostgreSQL, a transaction-scoped advisory lock on the key tells a duplicate
    that arrives while the first request is still running to back off (409) instead
    of queueing behind it. SQLite's write transactions are already serialised."""
    if uow.session.get_bind().dialect.name != "postgresql":
        return True
    digest = hashlib.sha256(owner_id.bytes + key.encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    statement = select(sa.func.pg_try_advisory_xact_lock(lock_id))
    return bool((await uow.session.exec(statement)).one())


async def _replay(uow: UnitOfWork, *, owner_id: UUID, key: str, fp: str) -> Response:
    statement = select(IdempotencyRecord).where(
        IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key
    )
    stored = (await uow.session.exec(statement)).one()
    if stored.fingerprint != fp:
        raise IdempotencyKeyReused()
    if stored.status_code is None or stored.response_body is None:
        raise IdempotencyKeyInFlight()
    return Response(
        stored.response_body,
        status_code=stored.status_code,
        media_type="application/json",
        headers={REPLAY_HEADER: "true"},
    )


async def purge_expired(uow: UnitOfWork) -> int:
    result = await uow.session.exec(
        sa.delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= uow.now())
    )
    return int(result.rowcount)

"""`Idempotency-Key`: a retried request replays the first response instead of acting
twice.

Keys are scoped to the caller. The first request claims its key by inserting a row
in the *same transaction* as its effect, so the unique constraint decides between
concurrent duplicates on every server process. On PostgreSQL a duplicate that
arrives while the first is still running finds the key's advisory lock taken and is
answered 409 `idempotency_key_in_flight` at once (it does not wait); once the first
has committed, a retry replays its response. On SQLite writers are serialised, so a
duplicate waits for the first and then replays. If the first fails, its claim rolls
back with it and a retry runs afresh. The response body is stored as the exact bytes
sent, so a replay is identical byte for byte. A request that fails (validation or a
domain error) stores nothing. The key is checked after the body (`run_once`), so a
bad body is reported before a missing key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from fastapi import Header
from pydantic import BaseModel, StringConstraints
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, col, select
from sqlmodel.sql.expression import SelectOfScalar
from starlette.responses import Response

from orderdesk.core.errors import Conflict, DomainError, InvalidInput
from orderdesk.core.ids import new_id
from orderdesk.core.models import Entity, UTCDateTime
from orderdesk.core.openapi import required_headers
from orderdesk.core.text import SINGLE_LINE
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


# The bounds sit on the string itself, not on the optional header around it, so the
# document shows them on the string the client sends.
_Key = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"), SINGLE_LINE
]


@required_headers(IDEMPOTENCY_HEADER)
async def idempotency_key(
    key: Annotated[_Key | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
) -> str | None:
    """The key as sent; its absence is refused by `run_once`, after the path and the
    body have been validated, so a bad body is reported first."""
    return key


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """What makes two requests "the same": method, path and the parsed body (so
    whitespace and key order in the JSON do not matter)."""
    canonical = body.model_dump_json(round_trip=True).encode()
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def _claim_statement(insert: Callable[[sa.Table], Any]) -> Any:
    """Insert the key's row, or take over an expired one (`excluded` is the new row),
    returning its id; no row back when a live row holds the key. Built once per
    dialect, with bind parameters, so SQLAlchemy derives no cache key per request."""
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


async def run_once(
    uow: UnitOfWork,
    *,
    owner_id: UUID,
    key: str | None,
    request_fingerprint: str,
    ttl: timedelta,
    status_code: int,
    action: Callable[[], Awaitable[BaseModel]],
) -> Response:
    """Run `action` once per (owner, key); later calls replay its stored response."""
    if key is None:
        raise IdempotencyKeyMissing()
    claim = await _claim(
        uow, owner_id=owner_id, key=key, request_fingerprint=request_fingerprint, ttl=ttl
    )
    if claim is None:
        return await _replay(uow, owner_id=owner_id, key=key, fp=request_fingerprint)
    result = await action()
    body = result.model_dump_json().encode()
    await uow.session.exec(
        _STORE_RESPONSE, params={"claim": claim, "status_code": status_code, "body": body}
    )
    return Response(body, status_code=status_code, media_type="application/json")


async def _claim(
    uow: UnitOfWork, *, owner_id: UUID, key: str, request_fingerprint: str, ttl: timedelta
) -> UUID | None:
    """Claim the key in one statement that cannot fail on a duplicate (so no
    savepoint). Returns the claimed row's id, or None when a live row already holds
    the key: a retry to replay, or a conflicting request."""
    dialect = uow.session.get_bind().dialect.name
    if not await _lock_key(uow, dialect, owner_id=owner_id, key=key):
        raise IdempotencyKeyInFlight()
    now = uow.now()
    params = {
        "id": new_id(),
        "owner_id": owner_id,
        "key": key,
        "fingerprint": request_fingerprint,
        "now": now,
        "expires_at": now + ttl,
    }
    claimed: UUID | None = (
        await uow.session.exec(_CLAIM[dialect], params=params)
    ).scalar_one_or_none()
    return claimed


async def _lock_key(uow: UnitOfWork, dialect: str, *, owner_id: UUID, key: str) -> bool:
    """On PostgreSQL, a transaction-scoped advisory lock on the key tells a duplicate
    that arrives while the first request is still running to back off (409) instead
    of queueing behind it. SQLite's write transactions are already serialised."""
    if dialect != "postgresql":
        return True
    digest = hashlib.sha256(owner_id.bytes + key.encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    return bool((await uow.session.exec(_TRY_LOCK, params={"lock_id": lock_id})).one())


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

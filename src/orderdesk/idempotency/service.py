"""Claiming a key, recording the answer it guards, and forgetting expired keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from orderdesk.core.ids import new_id
from orderdesk.core.uow import UnitOfWork
from orderdesk.idempotency import repository as idempotency_repository
from orderdesk.idempotency.errors import IdempotencyKeyInFlight, IdempotencyKeyReused


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first answer under a key, exactly as it was sent."""

    status_code: int
    body: bytes


async def claim_key(
    uow: UnitOfWork, *, owner_id: UUID, key: str, fingerprint: str, ttl: timedelta
) -> UUID | StoredResponse:
    """Claim `key` for this request in the caller's transaction (the id of the claim,
    to record the answer on), or find the answer a finished request stored under it.

    A request still running under the key is a 409 at once on PostgreSQL (its
    advisory lock is taken); on SQLite this request's `BEGIN IMMEDIATE` has already
    waited for it to finish. The same key with another request is a 422."""
    postgresql = uow.session.get_bind().dialect.name == "postgresql"
    lock_id = _lock_id(owner_id, key)
    if postgresql and not await idempotency_repository.try_advisory_lock(uow.session, lock_id):
        raise IdempotencyKeyInFlight()
    now = uow.now()
    claimed = await idempotency_repository.claim(
        uow.session,
        claim_id=new_id(),
        owner_id=owner_id,
        key=key,
        fingerprint=fingerprint,
        now=now,
        expires_at=now + ttl,
    )
    if claimed is not None:
        return claimed
    stored = await idempotency_repository.get_by_key(uow.session, owner_id=owner_id, key=key)
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if stored.status_code is None or stored.response_body is None:
        raise IdempotencyKeyInFlight()
    return StoredResponse(status_code=stored.status_code, body=stored.response_body)


async def record_response(uow: UnitOfWork, claim_id: UUID, response: StoredResponse) -> None:
    """Store the answer on the claim; it commits (or rolls back) with the effect."""
    await idempotency_repository.store_response(
        uow.session, claim_id, status_code=response.status_code, body=response.body
    )


async def release_claim(uow: UnitOfWork, claim_id: UUID) -> None:
    """Give up a claim whose request failed after committing it (a checkpoint), so a
    retry runs afresh as it would after any other failure."""
    await idempotency_repository.delete_claim(uow.session, claim_id)


async def purge_expired(uow: UnitOfWork) -> int:
    """Forget keys past their time to live (the periodic purge); returns how many."""
    return await idempotency_repository.purge_expired(uow.session, now=uow.now())


def _lock_id(owner_id: UUID, key: str) -> int:
    digest = hashlib.sha256(owner_id.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)

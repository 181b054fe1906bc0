"""Periodic jobs, run by the in-process scheduler or by Celery beat.

Each is safe to run from several processes at once: expiry takes its rows with
SKIP LOCKED, purges are plain deletes of what is already expired.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from orderdesk.auth.models import OneTimeToken, RefreshToken
from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.idempotency.service import purge_expired as purge_idempotency_keys
from orderdesk.orders import service as order_service
from orderdesk.outbox import repository as outbox_repository

DONE_EVENT_RETENTION = timedelta(days=7)


async def expire_unpaid_orders(c: Container) -> int:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        return await order_service.expire_unpaid_orders(
            uow, max_age=timedelta(seconds=c.settings.order_payment_ttl_seconds)
        )


async def purge_expired_records(c: Container) -> int:
    """Expired refresh and single-use tokens, idempotency keys, old finished events."""
    async with unit_of_work(c.database, clock=c.clock) as uow:
        now = uow.now()
        purged = 0
        for model in (RefreshToken, OneTimeToken):
            result = await uow.session.exec(sa.delete(model).where(col(model.expires_at) < now))
            purged += int(result.rowcount)
        purged += await purge_idempotency_keys(uow)
        purged += await outbox_repository.purge_done(uow.session, before=now - DONE_EVENT_RETENTION)
        return purged


async def refresh_analytics(c: Container) -> int:
    """The hourly analytics hook; the analytics issue gives it work."""
    return 0


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    every: timedelta
    run: Callable[[Container], Awaitable[int]]


PERIODIC_JOBS = (
    PeriodicJob("expire-unpaid-orders", timedelta(minutes=1), expire_unpaid_orders),
    PeriodicJob("purge-expired-records", timedelta(hours=1), purge_expired_records),
    PeriodicJob("refresh-analytics", timedelta(hours=1), refresh_analytics),
)

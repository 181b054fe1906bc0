"""Periodic jobs: the mechanism. Which jobs run and how often is the table
`orderdesk.bootstrap.PERIODIC_JOBS`; each job is a domain service function run in a
unit of work of its own, by the in-process scheduler (`outbox.background`) or by
Celery beat and a worker (`outbox.worker`).

Every job must be safe to run from several processes at once (expiry takes its rows
with SKIP LOCKED, purges are plain deletes of what is already expired). A job's name
is what beat's schedule and queued `orderdesk.run_periodic` messages carry: keep it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from orderdesk.container import Container
from orderdesk.core.settings import Settings
from orderdesk.core.uow import UnitOfWork, unit_of_work

JobFunction = Callable[[UnitOfWork, Settings], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    every: timedelta
    run: JobFunction


async def run_job(c: Container, job: PeriodicJob) -> int:
    """Run one job in its own unit of work, committed when it returns; what it did
    (rows expired, purged…)."""
    async with unit_of_work(c.database, clock=c.clock) as uow:
        return await job.run(uow, c.settings)


def job_named(jobs: Sequence[PeriodicJob], name: str) -> PeriodicJob:
    for job in jobs:
        if job.name == name:
            return job
    raise LookupError(f"no periodic job named {name!r}")

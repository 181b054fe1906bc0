"""Runners take leased event ids from the relay and execute them.

In process (MVP tier, no broker): the API process runs the relay and the handlers on
its own event loop. With a broker (`ORDERDESK_BROKER_URL`), the relay still runs in
every API and worker process, and hands ids to Celery; handlers run only in workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol
from uuid import UUID

import structlog

from orderdesk.core.container import Container
from orderdesk.jobs import service as job_service

log = structlog.get_logger("orderdesk.jobs")


class Runner(Protocol):
    def capacity(self) -> int:
        """How many more events to lease now; leasing more than can start before
        their lease ends would only have them leased again."""
        ...

    async def dispatch(self, event_ids: list[UUID]) -> None: ...

    async def drain(self) -> None: ...


class InProcessRunner:
    """Runs handlers as tasks on this event loop, at most `concurrency` at once."""

    def __init__(self, c: Container) -> None:
        self._c = c
        self._slots = asyncio.Semaphore(c.settings.job_concurrency)
        self._tasks: set[asyncio.Task[bool]] = set()

    def capacity(self) -> int:
        return max(0, 2 * self._c.settings.job_concurrency - len(self._tasks))

    async def dispatch(self, event_ids: list[UUID]) -> None:
        for event_id in event_ids:
            task = asyncio.create_task(self._run(event_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, event_id: UUID) -> bool:
        async with self._slots:
            return await job_service.run_event(self._c, event_id)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Loop:
    """A named background loop calling `step` every `interval` seconds (sooner when
    the step found work), logging and surviving its errors, stopping on `stop()`."""

    def __init__(self, name: str, step: Callable[[], Awaitable[int]], interval: float) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name=self.name)

    async def _forever(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = await self._step()
            except Exception:
                log.exception("background_loop_failed", loop=self.name)
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task


def relay_loop(c: Container, runner: Runner) -> Loop:
    async def step() -> int:
        limit = min(runner.capacity(), c.settings.relay_batch_size)
        return await job_service.relay_once(c, runner.dispatch, limit=limit) if limit else 0

    return Loop("outbox-relay", step, c.settings.relay_interval_seconds)

"""Runners take leased event ids from the relay and execute them.

In process (MVP tier, no broker): the API process runs the relay and the handlers on
its own event loop. With a broker (`ORDERDESK_BROKER_URL`), the relay still runs in
every API and worker process, and hands ids to Celery; handlers run only in workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any, Protocol
from uuid import UUID

import structlog

from orderdesk.container import Container
from orderdesk.outbox import service as outbox_service

log = structlog.get_logger("orderdesk.outbox")


class Runner(Protocol):
    def capacity(self) -> int:
        """How many more events to lease now; leasing more than can start before
        their lease ends would only have them leased again."""
        ...

    def max_in_flight(self) -> int | None:
        """A bound on events leased and not finished, counted in the database over
        every relay (None: `capacity()` alone bounds this runner)."""
        ...

    async def wait_for_capacity(self) -> None:
        """Return once the runner may take more events (or once it is worth asking
        the database again)."""
        ...

    async def dispatch(self, event_ids: list[UUID]) -> None: ...

    async def drain(self) -> None: ...


class InProcessRunner:
    """Runs handlers as tasks on this event loop, at most `concurrency` at once, with
    as many more leased and waiting for a slot."""

    def __init__(self, c: Container) -> None:
        self._c = c
        self._concurrency = c.settings.handler_concurrency
        self._slots = asyncio.Semaphore(self._concurrency)
        self._tasks: set[asyncio.Task[bool]] = set()
        # Set once half the capacity is free again: the relay, waiting on it when the
        # runner was full, leases the next batch while the other half still runs.
        self._room = asyncio.Event()

    def capacity(self) -> int:
        free = max(0, 2 * self._concurrency - len(self._tasks))
        if free == 0:
            self._room.clear()
        return free

    def max_in_flight(self) -> int | None:
        return None

    async def wait_for_capacity(self) -> None:
        await self._room.wait()

    async def dispatch(self, event_ids: list[UUID]) -> None:
        for event_id in event_ids:
            task = asyncio.create_task(self._run(event_id))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if len(self._tasks) <= self._concurrency:
            self._room.set()

    async def _run(self, event_id: UUID) -> bool:
        async with self._slots:
            return await outbox_service.run_event(self._c, event_id)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Pace(Enum):
    """What a loop's step found, and so when to step again."""

    AGAIN = "again"  # more work may be waiting: step again now
    FULL = "full"  # work is waiting but the runner is full: step once it has room
    IDLE = "idle"  # nothing to do: step again after the interval


class Loop:
    """A named background loop calling `step` again at once while it finds work,
    once `wake()` returns while its runner is full, and every `interval` seconds
    when idle; logging and surviving its errors, stopping on `stop()`. `interval`
    also bounds the wait for `wake()`."""

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[Pace]],
        interval: float,
        *,
        wake: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._wake = wake
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name=self.name)

    async def _forever(self) -> None:
        while not self._stopping.is_set():
            try:
                pace = await self._step()
            except Exception:
                log.exception("background_loop_failed", loop=self.name)
                pace = Pace.IDLE
            if pace is Pace.AGAIN:
                await asyncio.sleep(0)  # let the handlers just dispatched start
            elif pace is Pace.FULL and self._wake is not None:
                await self._pause(self._wake())
            else:
                await self._pause(None)

    async def _pause(self, wake: Coroutine[Any, Any, None] | None) -> None:
        """Until `stop()`, `wake` returns, or the interval has passed."""
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._stopping.wait())}
        if wake is not None:
            waiters.add(asyncio.ensure_future(wake))
        try:
            await asyncio.wait(waiters, timeout=self._interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task


def relay_loop(c: Container, runner: Runner) -> Loop:
    """Lease due events while there are some and the runner (and, for a broker, the
    in-flight bound) has room; wait for room when full, poll when idle."""
    batch_size = c.settings.relay_batch_size

    async def step() -> Pace:
        limit = min(runner.capacity(), batch_size)
        if limit == 0:
            return Pace.FULL
        relayed = await outbox_service.relay(
            c, runner.dispatch, limit=limit, max_in_flight=runner.max_in_flight()
        )
        if relayed.room == 0:
            return Pace.FULL
        return Pace.AGAIN if relayed.leased == relayed.room else Pace.IDLE

    return Loop(
        "outbox-relay", step, c.settings.relay_interval_seconds, wake=runner.wait_for_capacity
    )

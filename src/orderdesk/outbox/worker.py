"""Celery: the broker-backed runner (CORE and FULL tiers).

Settings are chosen for no loss: tasks are acknowledged after they finish and
rejected back to the queue when a worker dies (`acks_late`,
`reject_on_worker_lost`), a worker takes one task at a time (prefetch 1), RabbitMQ
confirms every publish, and Redis's visibility timeout is longer than any retry
delay. Still, the outbox is the record: a task lost anyway is re-sent by the relay
when its lease runs out.

Celery tasks are synchronous, so each worker process keeps one event loop and one
container (engine, pools) for its life, made when the process starts, and runs the
shared async handlers on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from orderdesk.container import Container
from orderdesk.core.logging import flush_logging
from orderdesk.core.settings import Settings, get_settings
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.scheduler import PeriodicJob, job_named, run_job

RUN_EVENT = "orderdesk.run_event"
RUN_PERIODIC = "orderdesk.run_periodic"


def make_celery(
    settings: Settings,
    *,
    build: Callable[[Settings], Container] | None = None,
    periodic_jobs: Sequence[PeriodicJob] = (),
) -> Celery:
    """The Celery app. A process that only publishes (an API process's relay) needs
    nothing more; beat needs the `periodic_jobs` to schedule, and a worker also needs
    `build`, how each of its processes makes its container (the composition root,
    `orderdesk.bootstrap`, passes both: this module imports nothing above it)."""
    _WorkerState.build = build
    _WorkerState.periodic_jobs = tuple(periodic_jobs)
    app = Celery("orderdesk", broker=settings.broker_url, set_as_current=True)
    visibility = int(max(3600, 4 * settings.event_backoff_max_seconds))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": visibility, "confirm_publish": True},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_schedule={
            job.name: {
                "task": RUN_PERIODIC,
                "schedule": job.every.total_seconds(),
                "args": (job.name,),
            }
            for job in periodic_jobs
        },
    )
    app.task(name=RUN_EVENT)(_run_event_task)
    app.task(name=RUN_PERIODIC)(_run_periodic_task)
    return app


class _WorkerState:
    """The one loop and container of this worker process."""

    loop: asyncio.AbstractEventLoop | None = None
    container: Container | None = None
    # Set by `make_celery` in the parent, inherited by forked pool processes.
    build: Callable[[Settings], Container] | None = None
    periodic_jobs: tuple[PeriodicJob, ...] = ()

    @classmethod
    def run(cls, coro_factory: Any) -> Any:
        if cls.loop is None or cls.container is None:
            _start_worker_process()
        assert cls.loop is not None
        assert cls.container is not None
        return cls.loop.run_until_complete(coro_factory(cls.container))


def _start_worker_process(**_: Any) -> None:
    from orderdesk.core.logging import configure_logging

    settings = get_settings()
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    _WorkerState.loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_WorkerState.loop)
    if _WorkerState.build is None:
        raise RuntimeError("make_celery(build=...) was not given how to build the container")
    _WorkerState.container = _WorkerState.build(settings)


def _stop_worker_process(**_: Any) -> None:
    if _WorkerState.loop is not None and _WorkerState.container is not None:
        _WorkerState.loop.run_until_complete(_WorkerState.container.close())
        _WorkerState.loop.close()
    # Pool children leave by os._exit, which runs no atexit hook: write what the
    # log listener still holds now.
    flush_logging()


worker_process_init.connect(_start_worker_process, weak=False)
worker_process_shutdown.connect(_stop_worker_process, weak=False)


def _run_event_task(event_id: str) -> bool:
    return bool(_WorkerState.run(lambda c: outbox_service.run_event(c, UUID(event_id))))


def _run_periodic_task(name: str) -> int:
    job = job_named(_WorkerState.periodic_jobs, name)
    return int(_WorkerState.run(lambda c: run_job(c, job)))


# How soon a relay held back by the in-flight bound counts again: the workers free
# room in other processes, so no local signal says when.
IN_FLIGHT_RECHECK_SECONDS = 0.1


class CeleryRunner:
    """Hands leased events to Celery; used by the relay in API and worker processes.

    What the broker holds is bounded in the database (`relay_max_in_flight`, over
    every relay), not per relay: the queue then never holds more than the workers
    start within a lease, so queued events are not leased and published again."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self._app = app
        self._batch_size = settings.relay_batch_size
        self._max_in_flight = settings.relay_max_in_flight

    def capacity(self) -> int:
        return self._batch_size

    def max_in_flight(self) -> int | None:
        return self._max_in_flight

    async def wait_for_capacity(self) -> None:
        await asyncio.sleep(IN_FLIGHT_RECHECK_SECONDS)

    async def dispatch(self, event_ids: list[UUID]) -> None:
        # Publishing is blocking I/O (and waits for broker confirms): off the loop.
        await asyncio.to_thread(self._publish, event_ids)

    def _publish(self, event_ids: list[UUID]) -> None:
        for event_id in event_ids:
            self._app.send_task(RUN_EVENT, args=(str(event_id),))

    async def drain(self) -> None:
        return None

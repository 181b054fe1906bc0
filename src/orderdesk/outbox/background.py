"""What a process runs in the background, chosen from settings in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orderdesk.container import Container
from orderdesk.outbox.runners import InProcessRunner, Loop, Pace, Runner, relay_loop
from orderdesk.outbox.scheduler import PeriodicJob, run_job


@dataclass
class Background:
    runner: Runner
    loops: list[Loop] = field(default_factory=list)

    @classmethod
    def for_api(cls, c: Container, *, periodic_jobs: Sequence[PeriodicJob]) -> Background:
        """No broker: relay, handlers and the scheduler (`periodic_jobs`) all run here
        (MVP tier). With a broker: the relay runs here and hands events to Celery
        workers, and beat runs the periodic jobs."""
        runner: Runner
        if c.settings.broker_url:
            from orderdesk.outbox.worker import CeleryRunner, make_celery

            runner = CeleryRunner(make_celery(c.settings), c.settings)
            loops = [relay_loop(c, runner)]
        else:
            runner = InProcessRunner(c)
            loops = [relay_loop(c, runner)]
            if c.settings.run_scheduler:
                loops += [_periodic_loop(c, job) for job in periodic_jobs]
        return cls(runner=runner, loops=loops)

    def start(self) -> None:
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self.loops:
            await loop.stop()
        await self.runner.drain()


def _periodic_loop(c: Container, job: PeriodicJob) -> Loop:
    async def step() -> Pace:
        await run_job(c, job)
        return Pace.IDLE  # run once per period, whatever it found

    return Loop(job.name, step, job.every.total_seconds())

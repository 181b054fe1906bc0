"""What a process runs in the background, chosen from settings in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from orderdesk.container import Container
from orderdesk.outbox.runners import InProcessRunner, Loop, Pace, Runner, relay_loop
from orderdesk.outbox.scheduler import PERIODIC_JOBS, PeriodicJob


@dataclass
class Background:
    runner: Runner
    loops: list[Loop] = field(default_factory=list)

    @classmethod
    def for_api(cls, c: Container) -> Background:
        """No broker: relay, handlers and the scheduler all run here (MVP tier).
        With a broker: the relay runs here and hands events to Celery workers."""
        runner: Runner
        if c.settings.broker_url:
            from orderdesk.outbox.worker import CeleryRunner, make_celery

            runner = CeleryRunner(make_celery(c.settings), c.settings)
            loops = [relay_loop(c, runner)]
        else:
            runner = InProcessRunner(c)
            loops = [relay_loop(c, runner)]
            if c.settings.run_scheduler:
                loops += [_periodic_loop(c, job) for job in PERIODIC_JOBS]
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
        await job.run(c)
        return Pace.IDLE  # run once per period, whatever it found

    return Loop(job.name, step, job.every.total_seconds())

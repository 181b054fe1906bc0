"""The outbox relay running beside a Celery worker, in a thread with its own event
loop and container, so `orderdesk serve` plus `orderdesk worker` is a complete
deployment even when no API process is up."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from celery import Celery

from orderdesk.container import Container
from orderdesk.core.settings import Settings
from orderdesk.outbox.runners import relay_loop
from orderdesk.outbox.worker import CeleryRunner


class RelayThread(threading.Thread):
    def __init__(
        self, settings: Settings, celery: Celery, *, build: Callable[[Settings], Container]
    ) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self._settings = settings
        self._build = build
        self._celery = celery
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        container = self._build(self._settings)
        relay = relay_loop(container, CeleryRunner(self._celery, self._settings))
        relay.start()
        try:
            await self._stop_requested.wait()
        finally:
            await relay.stop()
            await container.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop_requested is not None:
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        self.join(timeout)

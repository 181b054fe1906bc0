"""The sandbox's own clock: wall time plus an offset that `/_sandbox/clock/advance`
moves forward, so a test can age idempotency keys by a day without waiting one."""

from __future__ import annotations

import time


class SandboxClock:
    def __init__(self, start: float | None = None) -> None:
        # A fixed start makes a manual clock for unit tests; None follows wall time.
        self._fixed = start
        self._offset = 0.0

    def now(self) -> float:
        base = self._fixed if self._fixed is not None else time.time()
        return base + self._offset

    def seconds(self) -> int:
        """Unix seconds, the unit of every `created`."""
        return int(self.now())

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds

"""A circuit breaker for calls that start new payment work.

When the gateway is down, each new payment would otherwise wait the full timeout
times every retry before failing; once `failures` calls in a row have ended in a
counted failure, the breaker answers `GatewayUnavailable` at once, without sending,
for `open_seconds`. Then one call (the probe) is let through: its success closes the
breaker, its failure opens it again. Only failures that say the gateway is unwell
count (by default `OutcomeUnknown` and a rate limit's `GatewayUnavailable`); a
decline or a refused request is the gateway working, and resets the count.

One instance per process, used from one event loop: state changes happen between
awaits, so no lock is needed. Results of calls that started before the state last
changed are ignored, so a slow call from before an outage cannot close the breaker
the outage opened, nor a late failure re-open it after a probe closed it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

from orderdesk.payments.gateway import GatewayUnavailable, OutcomeUnknown

T = TypeVar("T")
# While the probe is out, others are told to come back shortly: the probe settles it.
PROBE_RETRY_AFTER_SECONDS = 1.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def counts_as_failure(error: BaseException) -> bool:
    return isinstance(error, OutcomeUnknown | GatewayUnavailable)


class CircuitBreaker:
    def __init__(
        self,
        *,
        failures: int,
        open_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
        counts: Callable[[BaseException], bool] = counts_as_failure,
    ) -> None:
        if failures < 1 or open_seconds <= 0:
            raise ValueError("a breaker needs failures >= 1 and open_seconds > 0")
        self._threshold = failures
        self._open_seconds = open_seconds
        self._monotonic = monotonic
        self._counts = counts
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_out = False
        self._generation = 0  # bumped on every state change

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._remaining() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Runs `operation` if the breaker lets it through, and counts its outcome."""
        generation = self._admit()
        try:
            result = await operation()
        except BaseException as error:
            self._finish(
                generation, failed=self._counts(error), decided=isinstance(error, Exception)
            )
            raise
        self._finish(generation, failed=False, decided=True)
        return result

    def _admit(self) -> int:
        if self._state is BreakerState.OPEN:
            remaining = self._remaining()
            if remaining > 0:
                raise GatewayUnavailable(remaining, "payment gateway circuit open")
            self._change(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._probe_out:
                raise GatewayUnavailable(
                    PROBE_RETRY_AFTER_SECONDS, "payment gateway circuit half-open"
                )
            self._probe_out = True
        return self._generation

    def _finish(self, generation: int, *, failed: bool, decided: bool) -> None:
        if generation != self._generation:
            return  # started under another state: its outcome says nothing now
        if self._state is BreakerState.HALF_OPEN:
            self._probe_out = False
            if not decided:  # the probe was cancelled: the next call probes instead
                return
            if failed:
                self._open()
            else:
                self._change(BreakerState.CLOSED)
            return
        if not decided:
            return
        if not failed:
            self._consecutive = 0
            return
        self._consecutive += 1
        if self._consecutive >= self._threshold:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._monotonic()
        self._change(BreakerState.OPEN)

    def _change(self, state: BreakerState) -> None:
        self._state = state
        self._consecutive = 0
        self._probe_out = False
        self._generation += 1

    def _remaining(self) -> float:
        return self._opened_at + self._open_seconds - self._monotonic()

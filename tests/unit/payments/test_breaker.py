"""The breaker's state machine on a manual clock: what opens it, what it lets through
while open and half-open, and what closes it."""

from __future__ import annotations

import asyncio

import pytest

from orderdesk.payments.breaker import BreakerState, CircuitBreaker
from orderdesk.payments.gateway import (
    Decline,
    GatewayRejected,
    GatewayUnavailable,
    OutcomeUnknown,
    PaymentDeclined,
)
from tests.fakes import ManualMonotonic

FAILURES = 3
OPEN_SECONDS = 30.0


class Gateway:
    """Counts the calls that got through the breaker."""

    def __init__(self) -> None:
        self.sent = 0

    async def ok(self) -> str:
        self.sent += 1
        return "ok"

    async def unknown(self) -> str:
        self.sent += 1
        raise OutcomeUnknown("timed out")

    async def rate_limited(self) -> str:
        self.sent += 1
        raise GatewayUnavailable(1.0, "rate limit")

    async def declined(self) -> str:
        self.sent += 1
        raise PaymentDeclined(Decline("card_declined", "insufficient_funds", "declined"))

    async def rejected(self) -> str:
        self.sent += 1
        raise GatewayRejected("payment_intent_unexpected_state", "already succeeded")


@pytest.fixture
def clock() -> ManualMonotonic:
    return ManualMonotonic()


@pytest.fixture
def breaker(clock: ManualMonotonic) -> CircuitBreaker:
    return CircuitBreaker(failures=FAILURES, open_seconds=OPEN_SECONDS, monotonic=clock)


async def fail(breaker: CircuitBreaker, gateway: Gateway, times: int) -> None:
    for _ in range(times):
        with pytest.raises(OutcomeUnknown):
            await breaker.call(gateway.unknown)


async def test_it_opens_after_n_consecutive_unknown_outcomes(breaker: CircuitBreaker) -> None:
    gateway = Gateway()

    await fail(breaker, gateway, FAILURES - 1)
    assert breaker.state is BreakerState.CLOSED
    await fail(breaker, gateway, 1)

    assert breaker.state is BreakerState.OPEN
    assert gateway.sent == FAILURES


async def test_while_open_calls_fail_fast_without_sending(
    breaker: CircuitBreaker, clock: ManualMonotonic
) -> None:
    gateway = Gateway()
    await fail(breaker, gateway, FAILURES)
    clock.advance(10)

    with pytest.raises(GatewayUnavailable) as caught:
        await breaker.call(gateway.ok)

    assert gateway.sent == FAILURES
    assert caught.value.retry_after == pytest.approx(OPEN_SECONDS - 10)


async def test_rate_limits_count_as_failures(breaker: CircuitBreaker) -> None:
    gateway = Gateway()

    for _ in range(FAILURES):
        with pytest.raises(GatewayUnavailable):
            await breaker.call(gateway.rate_limited)

    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize("answer", ["declined", "rejected"])
async def test_declines_and_refusals_never_open_it(breaker: CircuitBreaker, answer: str) -> None:
    gateway = Gateway()

    for _ in range(FAILURES * 3):
        with pytest.raises((PaymentDeclined, GatewayRejected)):
            await breaker.call(getattr(gateway, answer))

    assert breaker.state is BreakerState.CLOSED


async def test_a_decline_between_failures_resets_the_count(breaker: CircuitBreaker) -> None:
    gateway = Gateway()

    await fail(breaker, gateway, FAILURES - 1)
    with pytest.raises(PaymentDeclined):
        await breaker.call(gateway.declined)
    await fail(breaker, gateway, FAILURES - 1)

    assert breaker.state is BreakerState.CLOSED


async def test_after_open_seconds_a_successful_probe_closes_it(
    breaker: CircuitBreaker, clock: ManualMonotonic
) -> None:
    gateway = Gateway()
    await fail(breaker, gateway, FAILURES)
    clock.advance(OPEN_SECONDS)
    assert breaker.state is BreakerState.HALF_OPEN

    assert await breaker.call(gateway.ok) == "ok"

    assert breaker.state is BreakerState.CLOSED
    await fail(breaker, gateway, FAILURES - 1)  # the count starts again from zero
    assert breaker.state is BreakerState.CLOSED


async def test_a_failed_probe_opens_it_again_for_the_full_period(
    breaker: CircuitBreaker, clock: ManualMonotonic
) -> None:
    gateway = Gateway()
    await fail(breaker, gateway, FAILURES)
    clock.advance(OPEN_SECONDS + 5)

    await fail(breaker, gateway, 1)

    assert breaker.state is BreakerState.OPEN
    with pytest.raises(GatewayUnavailable) as caught:
        await breaker.call(gateway.ok)
    assert caught.value.retry_after == pytest.approx(OPEN_SECONDS)


async def test_half_open_lets_exactly_one_probe_through_concurrent_callers(
    breaker: CircuitBreaker, clock: ManualMonotonic
) -> None:
    gateway = Gateway()
    await fail(breaker, gateway, FAILURES)
    clock.advance(OPEN_SECONDS)
    release = asyncio.Event()

    async def slow_ok() -> str:
        gateway.sent += 1
        await release.wait()
        return "ok"

    calls = [asyncio.create_task(breaker.call(slow_ok)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert results.count("ok") == 1
    assert all(isinstance(r, GatewayUnavailable) for r in results if r != "ok")
    assert gateway.sent == FAILURES + 1
    assert breaker.state is BreakerState.CLOSED


async def test_a_cancelled_probe_hands_the_probe_to_the_next_caller(
    breaker: CircuitBreaker, clock: ManualMonotonic
) -> None:
    gateway = Gateway()
    await fail(breaker, gateway, FAILURES)
    clock.advance(OPEN_SECONDS)
    probe = asyncio.create_task(breaker.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert await breaker.call(gateway.ok) == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_a_call_from_before_the_outage_does_not_settle_the_probe(
    breaker: CircuitBreaker, clock: ManualMonotonic
) -> None:
    gateway = Gateway()
    old_call, probe_call = asyncio.Event(), asyncio.Event()

    async def slow(release: asyncio.Event) -> str:
        await release.wait()
        return "ok"

    old = asyncio.create_task(breaker.call(lambda: slow(old_call)))
    await asyncio.sleep(0)
    await fail(breaker, gateway, FAILURES)
    clock.advance(OPEN_SECONDS)
    probe = asyncio.create_task(breaker.call(lambda: slow(probe_call)))
    await asyncio.sleep(0)
    old_call.set()
    assert await old == "ok"

    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(GatewayUnavailable):  # the probe is still out
        await breaker.call(gateway.ok)
    probe_call.set()
    assert await probe == "ok"
    assert breaker.state is BreakerState.CLOSED


def test_a_breaker_that_could_never_open_is_refused() -> None:
    with pytest.raises(ValueError, match="failures >= 1"):
        CircuitBreaker(failures=0, open_seconds=1)

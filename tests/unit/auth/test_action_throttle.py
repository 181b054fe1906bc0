"""ActionThrottle over the in-process counter with a clock the tests move: every
attempt counts, per target and per address, in fixed windows that end by themselves."""

from __future__ import annotations

import pytest

from orderdesk.auth.throttle import ActionLimits, ActionThrottle, MemoryFailureCounter
from orderdesk.core.errors import TooManyRequests
from orderdesk.core.settings import Settings
from tests.fakes import ManualMonotonic
from tests.helpers import TEST_SECRET, make_settings

TARGET = "inbox@example.com"
HOME = "192.0.2.10"
ELSEWHERE = "198.51.100.20"
WINDOW = 60


@pytest.fixture
def clock() -> ManualMonotonic:
    return ManualMonotonic()


def throttle(
    clock: ManualMonotonic, *, max_per_target: int = 3, max_per_address: int = 100
) -> ActionThrottle:
    return ActionThrottle(
        counter=MemoryFailureCounter(now=clock),
        action="test",
        window_seconds=WINDOW,
        max_per_target=max_per_target,
        max_per_address=max_per_address,
        refusal="Too many test attempts.",
    )


async def admitted(limiter: ActionThrottle, times: int, *, target: str, address: str) -> int:
    results = [await limiter.admit(target=target, address=address) for _ in range(times)]
    return results.count(None)


async def test_attempts_up_to_the_target_limit_are_admitted_and_the_next_is_not(
    clock: ManualMonotonic,
) -> None:
    limiter = throttle(clock, max_per_target=3)

    assert await admitted(limiter, 3, target=TARGET, address=HOME) == 3
    retry_after = await limiter.admit(target=TARGET, address=HOME)

    assert retry_after == WINDOW


async def test_enforce_refuses_with_429_and_the_seconds_left_in_the_window(
    clock: ManualMonotonic,
) -> None:
    limiter = throttle(clock, max_per_target=2)
    await limiter.enforce(target=TARGET, address=HOME)
    clock.advance(15)
    await limiter.enforce(target=TARGET, address=HOME)

    with pytest.raises(TooManyRequests) as refused:
        await limiter.enforce(target=TARGET, address=HOME)

    assert refused.value.retry_after == WINDOW - 15
    assert refused.value.headers["Retry-After"] == str(WINDOW - 15)
    assert refused.value.detail == "Too many test attempts."


async def test_the_target_limit_holds_across_addresses(clock: ManualMonotonic) -> None:
    # One inbox flooded from many places still gets only so many messages.
    limiter = throttle(clock, max_per_target=3)
    for n in range(3):
        assert await limiter.admit(target=TARGET, address=f"203.0.113.{n}") is None

    assert await limiter.admit(target=TARGET, address=ELSEWHERE) is not None


async def test_the_address_limit_holds_across_targets(clock: ManualMonotonic) -> None:
    limiter = throttle(clock, max_per_target=100, max_per_address=4)
    for n in range(4):
        assert await limiter.admit(target=f"user{n}@example.com", address=HOME) is None

    assert await limiter.admit(target="fresh@example.com", address=HOME) is not None
    assert await limiter.admit(target="fresh@example.com", address=ELSEWHERE) is None


async def test_attempts_refused_by_the_address_do_not_use_up_the_target(
    clock: ManualMonotonic,
) -> None:
    limiter = throttle(clock, max_per_target=2, max_per_address=1)
    assert await limiter.admit(target="first@example.com", address=HOME) is None
    for _ in range(5):
        assert await limiter.admit(target=TARGET, address=HOME) is not None

    for n in range(2):  # the target's whole allowance is still there
        assert await limiter.admit(target=TARGET, address=f"203.0.113.{n}") is None


async def test_targets_and_addresses_are_counted_apart(clock: ManualMonotonic) -> None:
    limiter = throttle(clock, max_per_target=2, max_per_address=100)
    await admitted(limiter, 3, target=TARGET, address=HOME)

    assert await limiter.admit(target="other@example.com", address=HOME) is None


async def test_the_window_closes_and_lets_attempts_through_again(clock: ManualMonotonic) -> None:
    limiter = throttle(clock, max_per_target=2)
    await admitted(limiter, 2, target=TARGET, address=HOME)
    clock.advance(WINDOW - 1)
    assert await limiter.admit(target=TARGET, address=HOME) == 1

    clock.advance(1)

    assert await admitted(limiter, 2, target=TARGET, address=HOME) == 2
    assert await limiter.admit(target=TARGET, address=HOME) == WINDOW


async def test_the_window_is_fixed_from_the_first_attempt(clock: ManualMonotonic) -> None:
    # Refused attempts keep counting, but must not push the window's end out.
    limiter = throttle(clock, max_per_target=1)
    await limiter.admit(target=TARGET, address=HOME)
    for _ in range(5):
        clock.advance(10)
        await limiter.admit(target=TARGET, address=HOME)

    clock.advance(10)

    assert await limiter.admit(target=TARGET, address=HOME) is None


async def test_emails_are_not_kept_in_the_counter_keys(clock: ManualMonotonic) -> None:
    counter = MemoryFailureCounter(now=clock)
    limiter = ActionThrottle(
        counter=counter,
        action="test",
        window_seconds=WINDOW,
        max_per_target=3,
        max_per_address=3,
        refusal="no",
    )
    await limiter.admit(target=TARGET, address=HOME)

    keys = list(counter._windows)
    assert sorted(keys) == sorted(limiter.keys(target=TARGET, address=HOME))
    assert len(keys) == 2
    assert not any(TARGET in key or "inbox" in key for key in keys)


def test_each_action_takes_its_own_settings_and_keys() -> None:
    settings = make_settings(
        signup_window_seconds=11,
        signup_max_per_email=12,
        signup_max_per_address=13,
        password_reset_window_seconds=21,
        password_reset_max_per_account=22,
        password_reset_max_per_address=23,
        verification_resend_window_seconds=31,
        verification_resend_max_per_account=32,
        verification_resend_max_per_address=33,
    )

    limits = ActionLimits.from_settings(settings, MemoryFailureCounter())

    throttles = [limits.signup, limits.password_reset, limits.verification_resend]
    assert [(t.window_seconds, t.max_per_target, t.max_per_address) for t in throttles] == [
        (11, 12, 13),
        (21, 22, 23),
        (31, 32, 33),
    ]
    keys = [t.keys(target=TARGET, address=HOME)[0] for t in throttles]
    assert len(set(keys)) == 3  # one action's attempts never count against another


def test_the_defaults_bound_every_action() -> None:
    settings = Settings(_env_file=None, secret_key=TEST_SECRET)

    assert settings.signup_max_per_address == 20
    assert settings.signup_max_per_email == 10
    assert settings.password_reset_max_per_account == 3
    assert settings.password_reset_max_per_address == 10
    assert settings.verification_resend_max_per_account == 3
    assert settings.verification_resend_max_per_address == 10
    assert settings.signup_window_seconds == 3600
    assert settings.password_reset_window_seconds == 3600
    assert settings.verification_resend_window_seconds == 3600

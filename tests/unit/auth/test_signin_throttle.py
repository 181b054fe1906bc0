"""SigninThrottle over the in-process MemoryFailureCounter: per-account-and-address
and per-address limits, resets on success, fixed windows that end by themselves."""

from __future__ import annotations

import asyncio

import pytest

from orderdesk.auth.throttle import MemoryFailureCounter, SigninThrottle
from orderdesk.core.errors import TooManyRequests

ACCOUNT = "victim@example.com"
HOME = "192.0.2.10"
ELSEWHERE = "198.51.100.20"


def throttle(
    *, window_seconds: int = 60, max_per_account: int = 3, max_per_address: int = 100
) -> SigninThrottle:
    return SigninThrottle(
        counter=MemoryFailureCounter(),
        window_seconds=window_seconds,
        max_per_account=max_per_account,
        max_per_address=max_per_address,
    )


async def fail(limiter: SigninThrottle, times: int, *, account: str, address: str) -> None:
    for _ in range(times):
        await limiter.record_failure(account=account, address=address)


async def test_failures_below_the_account_limit_are_let_through() -> None:
    limiter = throttle(max_per_account=3)
    await fail(limiter, 2, account=ACCOUNT, address=HOME)

    await limiter.check(account=ACCOUNT, address=HOME)


async def test_reaching_the_account_limit_blocks_with_a_retry_after() -> None:
    limiter = throttle(window_seconds=60, max_per_account=3)
    await fail(limiter, 3, account=ACCOUNT, address=HOME)

    with pytest.raises(TooManyRequests) as refused:
        await limiter.check(account=ACCOUNT, address=HOME)

    assert 0 < refused.value.retry_after <= 60
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)


async def test_a_success_resets_the_account_counter() -> None:
    limiter = throttle(max_per_account=3)
    await fail(limiter, 2, account=ACCOUNT, address=HOME)
    await limiter.record_success(account=ACCOUNT, address=HOME)
    await fail(limiter, 2, account=ACCOUNT, address=HOME)

    await limiter.check(account=ACCOUNT, address=HOME)


async def test_a_success_does_not_reset_the_address_counter() -> None:
    # Otherwise a sprayer could clear their address's count with one known password.
    limiter = throttle(max_per_account=100, max_per_address=3)
    for n in range(3):
        await limiter.record_failure(account=f"user{n}@example.com", address=HOME)
    await limiter.record_success(account="own@example.com", address=HOME)

    with pytest.raises(TooManyRequests):
        await limiter.check(account="someone@example.com", address=HOME)


async def test_account_failures_from_one_address_do_not_block_another_address() -> None:
    limiter = throttle(max_per_account=3)
    await fail(limiter, 5, account=ACCOUNT, address=ELSEWHERE)

    await limiter.check(account=ACCOUNT, address=HOME)


async def test_other_accounts_are_not_blocked_by_one_accounts_failures() -> None:
    limiter = throttle(max_per_account=3)
    await fail(limiter, 3, account=ACCOUNT, address=HOME)

    await limiter.check(account="other@example.com", address=HOME)


async def test_the_address_limit_blocks_spraying_across_accounts() -> None:
    limiter = throttle(max_per_account=3, max_per_address=5)
    for n in range(5):
        await limiter.record_failure(account=f"user{n}@example.com", address=HOME)

    with pytest.raises(TooManyRequests):
        await limiter.check(account="user99@example.com", address=HOME)


async def test_the_address_limit_leaves_other_addresses_alone() -> None:
    limiter = throttle(max_per_account=3, max_per_address=5)
    for n in range(5):
        await limiter.record_failure(account=f"user{n}@example.com", address=ELSEWHERE)

    await limiter.check(account="user99@example.com", address=HOME)


async def test_account_names_are_not_kept_in_the_counter_keys() -> None:
    counter = MemoryFailureCounter()
    limiter = SigninThrottle(
        counter=counter, window_seconds=60, max_per_account=3, max_per_address=5
    )
    await limiter.record_failure(account=ACCOUNT, address=HOME)

    keys = list(counter._windows)
    assert len(keys) == 2
    assert not any(ACCOUNT in key or "victim" in key for key in keys)


async def test_a_window_expires_by_itself() -> None:
    limiter = throttle(window_seconds=1, max_per_account=3)
    await fail(limiter, 3, account=ACCOUNT, address=HOME)
    with pytest.raises(TooManyRequests):
        await limiter.check(account=ACCOUNT, address=HOME)

    await asyncio.sleep(1.05)

    await limiter.check(account=ACCOUNT, address=HOME)


async def test_a_window_is_fixed_from_the_first_failure() -> None:
    # Later failures must not push the window's end out: it closes one window after
    # the first failure however many follow.
    limiter = throttle(window_seconds=1, max_per_account=3)
    await limiter.record_failure(account=ACCOUNT, address=HOME)
    await asyncio.sleep(0.5)
    await fail(limiter, 2, account=ACCOUNT, address=HOME)
    with pytest.raises(TooManyRequests):
        await limiter.check(account=ACCOUNT, address=HOME)

    await asyncio.sleep(0.6)  # past the first failure's window, inside the last one's

    await limiter.check(account=ACCOUNT, address=HOME)


async def test_a_new_window_counts_from_zero() -> None:
    limiter = throttle(window_seconds=1, max_per_account=3)
    await fail(limiter, 2, account=ACCOUNT, address=HOME)
    await asyncio.sleep(1.05)
    await fail(limiter, 2, account=ACCOUNT, address=HOME)

    await limiter.check(account=ACCOUNT, address=HOME)


async def test_the_memory_counter_forgets_its_oldest_windows_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orderdesk.auth import throttle

    monkeypatch.setattr(throttle, "MEMORY_COUNTER_MAX_WINDOWS", 100)
    counter = MemoryFailureCounter()
    await counter.hit("first", window_seconds=3600)
    for n in range(100):
        await counter.hit(f"key-{n}", window_seconds=3600)

    assert len(counter._windows) <= 100
    assert await counter.count("first") == (0, 0)  # the oldest open window went first
    assert (await counter.count("key-99"))[0] == 1

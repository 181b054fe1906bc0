"""Retry delays: exponential backoff with full jitter, uniform in
[0, min(cap, base·2^(n-1))] for the n-th attempt."""

from __future__ import annotations

import statistics

import pytest

from orderdesk.outbox.service import backoff

SAMPLES = 2000
BASE = 2.0
CAP = 600.0


def delays(attempt: int, *, base: float = BASE, cap: float = CAP) -> list[float]:
    return [backoff(attempt, base=base, cap=cap).total_seconds() for _ in range(SAMPLES)]


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0)])
def test_every_delay_lies_between_zero_and_the_attempts_ceiling(
    attempt: int, ceiling: float
) -> None:
    samples = delays(attempt)

    assert min(samples) >= 0
    assert max(samples) <= ceiling


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 2.0), (3, 8.0), (6, 64.0)])
def test_delays_spread_over_the_whole_range_up_to_the_ceiling(attempt: int, ceiling: float) -> None:
    samples = delays(attempt)

    # Full jitter: some retries come almost at once, some near the ceiling (with 2000
    # uniform samples, missing either tenth has a chance of about 1e-91).
    assert min(samples) < 0.1 * ceiling
    assert max(samples) > 0.9 * ceiling
    assert len(set(samples)) > SAMPLES * 0.99


def test_the_mean_delay_is_half_the_ceiling() -> None:
    samples = delays(5)

    assert statistics.fmean(samples) == pytest.approx(16.0, rel=0.1)


def test_delays_grow_with_the_attempt_number() -> None:
    means = [statistics.fmean(delays(attempt)) for attempt in range(1, 8)]

    assert means == sorted(means)
    assert means[-1] > 30 * means[0]


def test_a_first_attempt_that_was_never_counted_waits_at_most_the_base() -> None:
    assert max(delays(0)) <= BASE


def test_late_attempts_are_capped() -> None:
    samples = delays(20)  # base·2^19 would be about 12 days

    assert max(samples) <= CAP
    assert max(samples) > 0.9 * CAP


def test_a_cap_below_the_base_caps_even_the_first_attempt() -> None:
    assert max(delays(1, base=30.0, cap=5.0)) <= 5.0


def test_a_huge_attempt_count_is_still_capped() -> None:
    # job_max_attempts has no upper bound; the delay must stay at the cap rather than
    # overflow the float computation of base·2^(n-1).
    delay = backoff(5000, base=BASE, cap=CAP)

    assert 0 <= delay.total_seconds() <= CAP

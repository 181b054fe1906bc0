"""Claiming: due events are leased to one relay at a time, in the order they
became due; leases run out and are taken again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orderdesk.container import Container
from orderdesk.outbox.models import EventStatus
from tests.integration.outbox.probes import (
    LEASE,
    Single,
    claim,
    emit_one,
    later,
    stored_event,
    update_event,
)

pytestmark = pytest.mark.usefixtures("probes")


async def test_claim_batch_leases_a_due_event(container: Container) -> None:
    event_id = await emit_one(container, Single)
    now = later()

    claimed = await claim(container, now=now)

    event = await stored_event(container, event_id)
    assert event_id in claimed
    assert event.status is EventStatus.RUNNING
    assert event.lease_expires_at == now + LEASE
    assert event.attempts == 0  # a lease is not an attempt: running the handler is


async def test_claim_batch_skips_an_event_that_is_not_yet_available(container: Container) -> None:
    event_id = await emit_one(container, Single)
    now = later()
    await update_event(container, event_id, available_at=now + timedelta(minutes=5))

    claimed = await claim(container, now=now)

    event = await stored_event(container, event_id)
    assert event_id not in claimed
    assert (event.status, event.attempts) == (EventStatus.PENDING, 0)


async def test_claim_batch_takes_an_event_once_it_becomes_available(container: Container) -> None:
    event_id = await emit_one(container, Single)
    now = later()
    await update_event(container, event_id, available_at=now + timedelta(minutes=5))

    claimed = await claim(container, now=now + timedelta(minutes=5))

    assert event_id in claimed


async def test_a_leased_event_is_not_handed_out_again_while_its_lease_runs(
    container: Container,
) -> None:
    event_id = await emit_one(container, Single)
    now = later()
    await claim(container, now=now)

    again = await claim(container, now=now + LEASE - timedelta(seconds=1))

    assert event_id not in again
    assert (await stored_event(container, event_id)).status is EventStatus.RUNNING


async def test_an_event_whose_lease_expired_is_leased_again(container: Container) -> None:
    event_id = await emit_one(container, Single)
    now = later()
    await claim(container, now=now)
    expired = now + LEASE + timedelta(seconds=1)

    again = await claim(container, now=expired)

    event = await stored_event(container, event_id)
    assert event_id in again
    assert event.status is EventStatus.RUNNING
    assert event.attempts == 0
    assert event.lease_expires_at == expired + LEASE


async def test_claim_batch_takes_at_most_its_limit(container: Container) -> None:
    ids = {await emit_one(container, Single) for _ in range(3)}
    now = later()

    first = await claim(container, now=now, limit=2)
    rest = await claim(container, now=now, limit=2)

    assert len(first) == 2
    assert set(first) | set(rest) == ids
    assert not set(first) & set(rest)


async def test_claim_batch_takes_the_longest_waiting_event_first(container: Container) -> None:
    now = later()
    newer = await emit_one(container, Single)
    older = await emit_one(container, Single)
    await update_event(container, older, available_at=now - timedelta(hours=1))
    await update_event(container, newer, available_at=now - timedelta(minutes=1))

    claimed = await claim(container, now=now, limit=1)

    assert claimed == [older]


@pytest.mark.parametrize("status", [EventStatus.DONE, EventStatus.FAILED])
async def test_finished_and_dead_lettered_events_are_never_claimed(
    container: Container, status: EventStatus
) -> None:
    event_id = await emit_one(container, Single)
    await update_event(container, event_id, status=status)

    claimed = await claim(container, now=later() + timedelta(days=30))

    assert event_id not in claimed

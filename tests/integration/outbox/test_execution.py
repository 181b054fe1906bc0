"""Running events: a handler's success marks its row done; a failure schedules a
retry after a growing, jittered backoff; the last allowed failure dead-letters it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox import wiring
from orderdesk.outbox.models import EventStatus, OutboxEvent
from orderdesk.outbox.wiring import HandlersNotInstalled, installed
from tests.fakes import ManualClock
from tests.helpers import drain_outbox
from tests.integration.outbox.probes import (
    LEASE,
    OBSERVED,
    RUNS,
    Failing,
    Fanout,
    Observed,
    claim,
    emit_event,
    emit_one,
    later,
    stored_event,
    token,
    with_settings,
)

pytestmark = pytest.mark.usefixtures("probes")


async def test_a_handler_that_succeeds_marks_its_event_done(container: Container) -> None:
    payload = {"token": token()}
    events = await emit_event(container, Fanout(**payload))

    await drain_outbox(container)

    ran = {name for name, run_token, _ in RUNS if run_token == payload["token"]}
    assert ran == {"test.fanout.first", "test.fanout.second"}
    for event in events:
        done = await stored_event(container, event.id)
        assert done.status is EventStatus.DONE
        assert done.completed_at is not None
        assert done.lease_expires_at is None


async def test_each_subscriber_runs_with_its_own_attempt_count(container: Container) -> None:
    payload = {"token": token()}
    await emit_event(container, Fanout(**payload))

    await drain_outbox(container)

    assert sorted(run for run in RUNS if run[1] == payload["token"]) == [
        ("test.fanout.first", payload["token"], 1),
        ("test.fanout.second", payload["token"], 1),
    ]


async def test_a_redelivery_of_a_finished_event_runs_nothing(container: Container) -> None:
    payload = {"token": token()}
    event_id = (await emit_event(container, Fanout(**payload)))[0].id
    await drain_outbox(container)
    runs_before = [run for run in RUNS if run[1] == payload["token"]]

    completed = await outbox_service.run_event(container, event_id)

    assert completed is False
    assert [run for run in RUNS if run[1] == payload["token"]] == runs_before


async def test_a_failing_handler_schedules_a_retry_after_a_backoff(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(
        with_settings(container, event_backoff_base_seconds=60, event_backoff_max_seconds=600),
        clock=clock,
    )
    payload = {"token": token()}
    event_id = await emit_one(c, Failing, payload["token"])

    ran = await drain_outbox(c)

    event = await stored_event(c, event_id)
    assert ran == 1
    assert event.status is EventStatus.PENDING
    assert event.attempts == 1
    assert event.last_error is not None
    assert f"boom {payload['token']}" in event.last_error
    assert event.lease_expires_at is None
    assert clock.now() < event.available_at <= clock.now() + timedelta(seconds=60)


async def test_a_failed_event_is_not_retried_before_its_backoff_ends(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(
        with_settings(container, event_backoff_base_seconds=60, event_backoff_max_seconds=600),
        clock=clock,
    )
    event_id = await emit_one(c, Failing)
    await drain_outbox(c)
    retry_at = (await stored_event(c, event_id)).available_at

    early = await claim(c, now=retry_at - timedelta(milliseconds=1))
    due = await claim(c, now=retry_at)

    assert event_id not in early
    assert event_id in due


async def test_the_backoff_grows_with_each_failure(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(
        with_settings(
            container,
            event_max_attempts=10,
            event_backoff_base_seconds=1,
            event_backoff_max_seconds=10_000,
        ),
        clock=clock,
    )
    event_id = await emit_one(c, Failing)
    waits = []
    for _ in range(8):
        await drain_outbox(c)
        event = await stored_event(c, event_id)
        waits.append((event.available_at - clock.now()).total_seconds())
        clock.current = event.available_at

    # Full jitter: each wait is below its own ceiling 2^(n-1), and the later ones are,
    # together, far above what the early ceilings allow.
    assert all(0 <= wait <= 2 ** (n - 1) for n, wait in enumerate(waits, start=1))
    assert sum(waits[5:]) > sum(2 ** (n - 1) for n in range(1, 4))


async def test_a_failing_event_is_dead_lettered_after_event_max_attempts(
    container: Container,
) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, event_max_attempts=3), clock=clock)
    event_id = await emit_one(c, Failing)
    statuses = []

    for _ in range(3):
        assert await drain_outbox(c) == 1
        statuses.append((await stored_event(c, event_id)).status)
        clock.advance(timedelta(hours=1))

    event = await stored_event(c, event_id)
    assert statuses == [EventStatus.PENDING, EventStatus.PENDING, EventStatus.FAILED]
    assert event.attempts == 3
    assert event.last_error is not None
    assert "boom" in event.last_error
    assert event.completed_at is None


async def test_a_dead_lettered_event_is_not_run_again_by_the_relay(container: Container) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, event_max_attempts=1), clock=clock)
    event_id = await emit_one(c, Failing)
    await drain_outbox(c)
    clock.advance(timedelta(days=30))

    ran = await drain_outbox(c)

    event = await stored_event(c, event_id)
    assert ran == 0
    assert (event.status, event.attempts) == (EventStatus.FAILED, 1)


async def test_running_a_handler_counts_the_attempt_and_renews_the_lease(
    container: Container,
) -> None:
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, event_lease_seconds=60), clock=clock)
    payload = {"token": token()}
    event_id = await emit_one(c, Observed, payload["token"])
    await claim(c, now=clock.now())
    clock.advance(timedelta(seconds=45))  # it waited in a queue for most of its lease

    completed = await outbox_service.run_event(c, event_id)

    assert completed is True
    assert OBSERVED[payload["token"]] == (1, 1, clock.now() + timedelta(seconds=60))
    assert (await stored_event(c, event_id)).attempts == 1


async def test_an_event_leased_again_and_again_keeps_its_whole_retry_budget(
    container: Container,
) -> None:
    # A long broker queue: the event's lease runs out five times before any handler
    # takes it, and each time a relay leases (and publishes) it again.
    clock = ManualClock(later())
    c = dataclasses.replace(with_settings(container, event_max_attempts=3), clock=clock)
    event_id = await emit_one(c, Failing)
    for _ in range(5):
        assert event_id in await claim(c, now=clock.now())
        clock.advance(LEASE + timedelta(seconds=1))
    assert (await stored_event(c, event_id)).attempts == 0

    statuses = []
    for _ in range(3):
        assert await drain_outbox(c) == 1
        statuses.append((await stored_event(c, event_id)).status)
        clock.advance(timedelta(hours=1))

    assert statuses == [EventStatus.PENDING, EventStatus.PENDING, EventStatus.FAILED]
    assert (await stored_event(c, event_id)).attempts == 3


async def test_an_event_for_an_unknown_handler_fails_with_the_reason(
    container: Container,
) -> None:
    now = datetime.now(UTC)
    event = OutboxEvent(
        topic="test.orphan",
        handler="test.no-such-handler",
        payload={},
        available_at=now,
        created_at=now,
    )
    async with unit_of_work(container.database) as uow:
        uow.session.add(event)

    await drain_outbox(container)

    stored = await stored_event(container, event.id)
    assert installed().named("test.no-such-handler") is None
    assert stored.status is EventStatus.PENDING
    assert stored.attempts == 1
    assert stored.last_error is not None
    assert "test.no-such-handler" in stored.last_error


async def test_an_event_whose_topic_its_handler_does_not_take_fails_with_the_reason(
    container: Container,
) -> None:
    now = datetime.now(UTC)
    event = OutboxEvent(
        topic="test.other",
        handler="test.single",
        payload={"token": token()},
        available_at=now,
        created_at=now,
    )
    async with unit_of_work(container.database) as uow:
        uow.session.add(event)

    await drain_outbox(container)

    stored = await stored_event(container, event.id)
    assert stored.status is EventStatus.PENDING
    assert stored.attempts == 1
    assert stored.last_error is not None
    assert "test.other" in stored.last_error


async def test_a_process_without_a_handler_table_uses_up_no_attempt(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = await emit_one(container, Observed)
    await claim(container, now=later())
    monkeypatch.setattr(wiring, "_overrides", [])
    monkeypatch.setattr(wiring, "_process_table", None)

    # A misbuilt process is a bug to raise, not a failure of the event: the event
    # keeps its whole retry budget for a process that can run it.
    with pytest.raises(HandlersNotInstalled):
        await outbox_service.run_event(container, event_id)

    stored = await stored_event(container, event_id)
    assert stored.attempts == 0
    assert stored.last_error is None

"""The dead-letter admin API: admins list events by status, page through them,
and give a dead letter a fresh set of attempts."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from orderdesk.outbox.models import EventStatus
from tests.factories import signed_in_as
from tests.helpers import problem
from tests.integration.outbox.probes import (
    RUNS,
    STILL_FAILING,
    Failing,
    Recovering,
    Single,
    dead_letter,
    emit_one,
    later,
    stored_event,
    token,
    update_event,
)

EVENTS = "/api/v1/admin/events"
UNKNOWN_ID = "0190f5f0-0000-7000-8000-000000000000"

pytestmark = pytest.mark.usefixtures("probes")


@pytest.fixture
async def admin(client: httpx.AsyncClient, container: Container) -> dict[str, str]:
    return (await signed_in_as(client, container, Role.ADMIN))[1]


async def test_admins_list_dead_lettered_events(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)
    pending = await emit_one(container, Single)

    response = await client.get(EVENTS, params={"status": "failed"}, headers=admin)

    assert response.status_code == 200, response.text
    items = {item["id"]: item for item in response.json()["items"]}
    assert str(failed) in items
    assert str(pending) not in items
    assert all(item["status"] == "failed" for item in items.values())
    listed = items[str(failed)]
    assert listed["topic"] == Failing.topic
    assert listed["handler"] == "test.failing"
    assert listed["attempts"] == 1
    assert "boom" in listed["last_error"]


async def test_admins_list_pending_events_by_status(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)
    pending = await emit_one(container, Single)

    response = await client.get(EVENTS, params={"status": "pending"}, headers=admin)

    ids = {item["id"] for item in response.json()["items"]}
    assert str(pending) in ids
    assert str(failed) not in ids


async def test_the_event_list_pages_with_a_cursor(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = {str(await dead_letter(container)) for _ in range(3)}

    first = await client.get(EVENTS, params={"status": "failed", "limit": 2}, headers=admin)
    cursor = first.json()["next_cursor"]
    second = await client.get(
        EVENTS, params={"status": "failed", "limit": 2, "cursor": cursor}, headers=admin
    )

    assert len(first.json()["items"]) == 2
    assert cursor is not None
    seen = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert len(seen) == len(set(seen))
    assert failed <= set(seen)


@pytest.mark.parametrize("role", [Role.STAFF, Role.CUSTOMER])
async def test_only_admins_may_list_events(
    client: httpx.AsyncClient, container: Container, role: Role
) -> None:
    _, headers = await signed_in_as(client, container, role)

    response = await client.get(EVENTS, params={"status": "failed"}, headers=headers)

    assert response.status_code == 403
    assert problem(response)["code"]


async def test_listing_events_needs_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    response = await client.get(EVENTS, params={"status": "failed"})

    assert response.status_code == 401


async def test_retrying_a_dead_letter_gives_it_fresh_attempts(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)

    response = await client.post(f"{EVENTS}/{failed}/retry", headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(failed)
    assert body["status"] == "pending"
    assert body["attempts"] == 0


async def test_a_retried_dead_letter_runs_again_and_completes(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    key = token()
    STILL_FAILING.add(key)
    failed = await dead_letter(container, Recovering, key)
    STILL_FAILING.discard(key)  # the cause is fixed; the admin retries

    response = await client.post(f"{EVENTS}/{failed}/retry", headers=admin)

    event = await stored_event(container, failed)
    assert response.status_code == 200
    assert event.status is EventStatus.DONE
    assert event.last_error is None
    assert ("test.recovering", key, 1) in RUNS


async def test_a_retried_dead_letter_that_fails_again_counts_from_one(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> None:
    failed = await dead_letter(container)

    await client.post(f"{EVENTS}/{failed}/retry", headers=admin)

    # The client runs the outbox after the request: the handler failed once more.
    event = await stored_event(container, failed)
    assert (event.status, event.attempts) == (EventStatus.PENDING, 1)


@pytest.mark.parametrize("status", [EventStatus.PENDING, EventStatus.RUNNING, EventStatus.DONE])
async def test_only_a_dead_letter_can_be_retried(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str], status: EventStatus
) -> None:
    event_id = await emit_one(container, Single)
    await update_event(
        container,
        event_id,
        status=status,
        attempts=1,
        available_at=later() + timedelta(hours=1),  # out of the test client's relay's way
    )

    response = await client.post(f"{EVENTS}/{event_id}/retry", headers=admin)

    assert response.status_code == 409
    assert problem(response)["code"] == "event_not_failed"
    event = await stored_event(container, event_id)
    assert (event.status, event.attempts) == (status, 1)


async def test_retrying_an_unknown_event_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(f"{EVENTS}/{UNKNOWN_ID}/retry", headers=admin)

    assert response.status_code == 404
    assert problem(response)["code"] == "event_not_found"


@pytest.mark.parametrize("role", [Role.STAFF, Role.CUSTOMER])
async def test_only_admins_may_retry_events(
    client: httpx.AsyncClient, container: Container, role: Role
) -> None:
    _, headers = await signed_in_as(client, container, role)
    failed = await dead_letter(container)

    response = await client.post(f"{EVENTS}/{failed}/retry", headers=headers)

    assert response.status_code == 403
    assert (await stored_event(container, failed)).status is EventStatus.FAILED

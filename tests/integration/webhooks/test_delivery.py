"""Outbound webhooks against a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.app import create_app
from orderdesk.auth import service as auth_service
from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from orderdesk.core.database import create_engine
from orderdesk.core.settings import Settings
from orderdesk.core.uow import unit_of_work
from orderdesk.outbox.models import EventStatus, OutboxEvent
from orderdesk.users.schemas import UserCreate
from orderdesk.webhooks.signing import verify
from tests.factories import STRONG_PASSWORD, bearer, sign_in, signed_up, unique_email
from tests.helpers import (
    DatabaseFactory,
    JobsRunningTransport,
    close_adapters,
    drain_outbox,
    make_container,
    make_settings,
)
from tests.servers import Receiver


@pytest.fixture
def webhook_settings(migrated_url: str) -> Settings:
    return make_settings(
        migrated_url,
        webhook_allow_private_targets=True,
        event_max_attempts=3,
        event_backoff_base_seconds=0.01,
        event_backoff_max_seconds=0.02,
        webhook_disable_after=1,
    )


@pytest.fixture
async def hooks_client(
    webhook_settings: Settings, database: Any, hasher: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    container = make_container(webhook_settings, database, hasher)
    app = create_app(webhook_settings, container=container)
    transport = JobsRunningTransport(container=container, app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, container
    await close_adapters(container)


async def _admin_headers(client: httpx.AsyncClient, c: Container) -> dict[str, str]:
    email = unique_email("admin")
    async with unit_of_work(c.database) as uow:
        data = UserCreate(email=email, password=STRONG_PASSWORD, full_name="Admin")
        await auth_service.register(uow, c, data=data, role=Role.ADMIN)
    return bearer(await sign_in(client, email))


async def _place_order(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    product = await client.post(
        "/api/v1/products",
        json={
            "sku": unique_email("p")[:20].replace("@", "-"),
            "name": "Mug",
            "price": {"amount": 900, "currency": "EUR"},
            "stock": 10,
        },
        headers=admin,
    )
    assert product.status_code == 201, product.text
    _, tokens = await signed_up(client)
    order = await client.post(
        "/api/v1/orders",
        json={"lines": [{"product_id": product.json()["id"], "quantity": 1}]},
        headers={**bearer(tokens), "Idempotency-Key": "hook-1"},
    )
    assert order.status_code == 201, order.text
    return str(order.json()["id"])


async def _settle_retries(c: Container, *, rounds: int = 40) -> None:
    """Retries are due a few milliseconds later: keep draining until nothing is left."""
    for _ in range(rounds):
        await asyncio.sleep(0.03)
        if not await drain_outbox(c):
            async with c.database.read_session() as session:
                waiting = (
                    await session.exec(
                        select(OutboxEvent).where(OutboxEvent.status == EventStatus.PENDING)
                    )
                ).all()
            if not waiting:
                return


async def _subscribe(client: httpx.AsyncClient, admin: dict[str, str], url: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": ["order.placed"]}, headers=admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_placed_order_is_delivered_once_with_a_valid_signature(
    hooks_client: tuple[httpx.AsyncClient, Container], receiver: Receiver
) -> None:
    client, c = hooks_client
    admin = await _admin_headers(client, c)
    subscription = await _subscribe(client, admin, receiver.url)

    order_id = await _place_order(client, admin)
    await _settle_retries(c)

    assert len(receiver.received) == 1
    delivery = receiver.received[0]
    headers = delivery["headers"]
    assert verify(
        subscription["secret"],
        int(headers["orderdesk-timestamp"]),
        delivery["body"],
        headers["orderdesk-signature"],
    )
    payload = json.loads(delivery["body"])
    assert payload["type"] == "order.placed"
    assert payload["data"]["order"]["id"] == order_id
    assert headers["orderdesk-event-id"] == payload["id"]


async def test_a_receiver_that_fails_at_first_gets_the_delivery_on_a_retry(
    hooks_client: tuple[httpx.AsyncClient, Container], receiver: Receiver
) -> None:
    client, c = hooks_client
    admin = await _admin_headers(client, c)
    subscription = await _subscribe(client, admin, receiver.url)
    receiver.script = [503, 500]

    await _place_order(client, admin)
    await _settle_retries(c)

    assert len(receiver.received) == 3
    deliveries = await client.get(
        f"/api/v1/webhooks/{subscription['id']}/deliveries", headers=admin
    )
    [record] = deliveries.json()["items"]
    assert record["status"] == "succeeded"
    assert record["attempts"] == 3


async def test_a_receiver_that_always_fails_dead_letters_and_disables_the_subscription(
    hooks_client: tuple[httpx.AsyncClient, Container], receiver: Receiver
) -> None:
    client, c = hooks_client
    admin = await _admin_headers(client, c)
    subscription = await _subscribe(client, admin, receiver.url)
    receiver.script = [500] * 10

    await _place_order(client, admin)
    await _settle_retries(c)

    listed = (await client.get("/api/v1/webhooks", headers=admin)).json()["items"]
    [state] = [s for s in listed if s["id"] == subscription["id"]]
    assert state["is_active"] is False
    assert state["disabled_reason"]
    failed = await client.get("/api/v1/admin/events?status=failed", headers=admin)
    assert [e["handler"] for e in failed.json()["items"]] == ["webhooks.deliver"]
    assert len(receiver.received) == 3

    enabled = await client.post(f"/api/v1/webhooks/{subscription['id']}/enable", headers=admin)
    assert enabled.json()["is_active"] is True


async def test_a_private_address_is_refused_unless_allowed(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin = await _admin_headers(client, container)

    response = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": ["order.placed"]},
        headers=admin,
    )

    assert response.status_code == 422
    assert response.json()["code"] == "unsafe_webhook_target"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:99999/hooks",  # port out of range
        "http://example.com:port/hooks",
        "http://[::1/hooks",  # unclosed IPv6 bracket
        "http://" + "a" * 70 + ".example.com/hooks",  # a label IDNA refuses
    ],
)
async def test_a_malformed_url_is_refused_not_a_server_error(
    client: httpx.AsyncClient, container: Container, url: str
) -> None:
    admin = await _admin_headers(client, container)

    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": ["order.placed"]}, headers=admin
    )

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "unsafe_webhook_target"


async def test_customers_cannot_manage_webhooks(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)

    response = await client.get("/api/v1/webhooks", headers=bearer(tokens))

    assert response.status_code == 403


async def test_a_delivery_is_sent_even_when_the_read_replica_lags(
    webhook_settings: Settings,
    database: Any,
    hasher: Any,
    receiver: Receiver,
    backend: str,
    database_factory: DatabaseFactory,
) -> None:
    """Reads routed to a "replica" that never catches up (a migrated database that
    receives no writes) must not hide a delivery the fan-out has just written."""
    replica_url = await database_factory.create_migrated(backend)
    replica = create_engine(replica_url, make_settings(replica_url), read_only=True)
    lagging = dataclasses.replace(
        database,
        read_engine=replica,
        read_sessions=async_sessionmaker(replica, class_=AsyncSession, expire_on_commit=False),
    )
    c = make_container(webhook_settings, lagging, hasher)
    app = create_app(webhook_settings, container=c)
    transport = JobsRunningTransport(container=c, app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            admin = await _admin_headers(client, c)
            subscription = await _subscribe(client, admin, receiver.url)

            order_id = await _place_order(client, admin)
            await _settle_retries(c)
            listed = await client.get("/api/v1/webhooks", headers=admin)
            deliveries = await client.get(
                f"/api/v1/webhooks/{subscription['id']}/deliveries", headers=admin
            )
    finally:
        await close_adapters(c)
        await replica.dispose()

    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0]["body"])["data"]["order"]["id"] == order_id
    # The list of subscriptions may lag (it reads the replica, which has none), but
    # the deliveries of one named by id are read from the primary: no 404.
    assert listed.json()["items"] == []
    assert deliveries.status_code == 200, deliveries.text
    [delivery] = deliveries.json()["items"]
    assert delivery["status"] == "succeeded"

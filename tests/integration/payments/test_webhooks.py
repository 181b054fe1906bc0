"""The payment webhook as an inbox: verified on the raw body, recorded once per
event id, applied through the outbox with the order and attempt locked."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from orderdesk.container import Container
from orderdesk.orders.models import OrderStatus
from orderdesk.outbox.models import OutboxEvent
from orderdesk.payments.models import GatewayEventRecord
from tests.factories import API, stored_order
from tests.fakes import RecordingMailer
from tests.helpers import drain_outbox, problem
from tests.integration.payments.conftest import SandboxControl, Shop, pay, payments_of

WEBHOOK = f"{API}/payments/webhook"


async def _inbox_size(c: Container) -> int:
    async with c.database.sessions() as session:
        return (await session.exec(select(func.count()).select_from(GatewayEventRecord))).one()


async def _outbox_size(c: Container) -> int:
    async with c.database.sessions() as session:
        return (await session.exec(select(func.count()).select_from(OutboxEvent))).one()


async def _succeeded_event(client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl) -> bytes:
    """A real `payment_intent.succeeded` for the shop's order, as the sandbox would
    send it: the order is paid at the gateway (3-D Secure authenticated), but not yet
    in orderdesk, which only learns it from this event."""
    pending = await pay(client, shop.customer, shop.order_id, "pm_card_authenticationRequired")
    assert pending.status_code == 202, pending.text
    intent_id = pending.json()["client_secret"].split("_secret_")[0]
    await sandbox.authenticate(intent_id)
    events = (await sandbox.http.get("/v1/events", headers=sandbox.auth)).json()["data"]
    [event] = [
        e
        for e in events
        if e["type"] == "payment_intent.succeeded" and e["data"]["object"]["id"] == intent_id
    ]
    return json.dumps(event, separators=(",", ":")).encode()


async def test_a_signed_success_event_marks_the_order_paid_once_however_often_it_comes(
    client: httpx.AsyncClient,
    shop: Shop,
    sandbox: SandboxControl,
    container: Container,
    mailer: RecordingMailer,
) -> None:
    body = await _succeeded_event(client, shop, sandbox)
    inbox_before = await _inbox_size(container)

    answers = [
        await client.post(WEBHOOK, content=body, headers=sandbox.signed(body)) for _ in range(10)
    ]

    assert {a.status_code for a in answers} == {204}
    assert await _inbox_size(container) == inbox_before + 1
    assert (await stored_order(container, shop.order_id)).status is OrderStatus.PAID
    assert len(mailer.of_kind("order_paid")) == 1
    [attempt] = (await payments_of(client, shop.customer, shop.order_id))["payments"]
    assert attempt["status"] == "succeeded"


@pytest.mark.parametrize(
    "forgery",
    ["bad-signature", "edited-body", "old-timestamp", "future-timestamp", "no-signature"],
)
async def test_an_unverifiable_webhook_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient,
    shop: Shop,
    sandbox: SandboxControl,
    container: Container,
    forgery: str,
) -> None:
    body = await _succeeded_event(client, shop, sandbox)
    now = int(time.time())
    headers: dict[str, str] = {
        "bad-signature": {**sandbox.signed(body), "Stripe-Signature": f"t={now},v1={'0' * 64}"},
        "edited-body": sandbox.signed(body),
        # Well past the 5 minutes either way: the test's clock and the server's read
        # the same time, seconds apart.
        "old-timestamp": sandbox.signed(body, timestamp=now - 330),
        "future-timestamp": sandbox.signed(body, timestamp=now + 330),
        "no-signature": {"Content-Type": "application/json"},
    }[forgery]
    sent = body.replace(b'"succeeded"', b'"succeeded" ') if forgery == "edited-body" else body
    inbox_before, outbox_before = await _inbox_size(container), await _outbox_size(container)

    response = await client.post(WEBHOOK, content=sent, headers=headers)

    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "invalid_webhook_signature"
    assert await _inbox_size(container) == inbox_before
    assert await _outbox_size(container) == outbox_before
    assert (await stored_order(container, shop.order_id)).status is OrderStatus.PENDING_PAYMENT


async def test_an_event_for_someone_elses_intent_is_recorded_and_ignored(
    client: httpx.AsyncClient, sandbox: SandboxControl, container: Container
) -> None:
    foreign: dict[str, Any] = {
        "id": "evt_foreign0000000000000001",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "pi_foreign000000000000001",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": 100,
                "currency": "eur",
                "metadata": {},
            }
        },
    }
    body = json.dumps(foreign).encode()

    response = await client.post(WEBHOOK, content=body, headers=sandbox.signed(body))

    assert response.status_code == 204, response.text
    async with container.database.sessions() as session:
        record = (
            await session.exec(
                select(GatewayEventRecord).where(GatewayEventRecord.event_id == foreign["id"])
            )
        ).one()
    assert record.handled_at is not None
    assert record.outcome == "foreign"
    assert await drain_outbox(container) == 0


async def test_an_event_orderdesk_does_not_act_on_is_acknowledged_and_not_recorded(
    client: httpx.AsyncClient, sandbox: SandboxControl, container: Container
) -> None:
    other: dict[str, Any] = {
        "id": "evt_othertype00000000000001",
        "object": "event",
        "type": "charge.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": "ch_other0000000000000000001", "object": "charge"}},
    }
    body = json.dumps(other).encode()
    inbox_before = await _inbox_size(container)

    response = await client.post(WEBHOOK, content=body, headers=sandbox.signed(body))

    assert response.status_code == 204, response.text
    assert await _inbox_size(container) == inbox_before

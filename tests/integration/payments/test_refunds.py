"""Refunds: partial or full, never more than what remains, each asked of the gateway
once under its own key; the order becomes refunded when nothing remains."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.orders.models import OrderStatus
from orderdesk.payments import service as payment_service
from tests.factories import API, Headers, idempotency, stock_of, stored_order
from tests.fakes import RecordingMailer
from tests.helpers import problem
from tests.integration.payments.conftest import SandboxControl, Shop, pay, payments_of


async def refund(
    client: httpx.AsyncClient,
    headers: Headers,
    order_id: str,
    amount: int | None = None,
    *,
    restock: bool = False,
    key: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "amount": None if amount is None else {"amount": amount, "currency": "EUR"},
        "restock": restock,
    }
    return await client.post(
        f"{API}/orders/{order_id}/refund", json=body, headers=idempotency(headers, key)
    )


async def paid(client: httpx.AsyncClient, shop: Shop) -> None:
    response = await pay(client, shop.customer, shop.order_id)
    assert response.status_code == 200, response.text


async def test_partial_refunds_then_the_rest_refund_the_order(
    client: httpx.AsyncClient,
    shop: Shop,
    sandbox: SandboxControl,
    container: Container,
    mailer: RecordingMailer,
) -> None:
    await paid(client, shop)

    first = await refund(client, shop.staff, shop.order_id, 1000)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "succeeded"
    assert (await stored_order(container, shop.order_id)).status is OrderStatus.PAID

    rest = await refund(client, shop.staff, shop.order_id)
    assert rest.status_code == 200, rest.text
    assert rest.json()["amount"] == {"amount": 1500, "currency": "EUR"}

    assert (await stored_order(container, shop.order_id)).status is OrderStatus.REFUNDED
    ledger = await sandbox.ledger()
    refunds = sorted(r["amount"] for r in ledger["refunds"] if r["status"] == "succeeded")
    assert refunds == [1000, 1500]
    listed = await payments_of(client, shop.staff, shop.order_id)
    assert listed["refunded"] == {"amount": 2500, "currency": "EUR"}
    assert len(mailer.of_kind("order_refunded")) == 1
    # Without restock the stock stays sold.
    assert await stock_of(container, shop.product_id) == 8


async def test_a_refund_retried_with_its_key_is_made_once(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl
) -> None:
    await paid(client, shop)

    first = await refund(client, shop.staff, shop.order_id, 500, key="refund-1")
    again = await refund(client, shop.staff, shop.order_id, 500, key="refund-1")

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert [r["amount"] for r in (await sandbox.ledger())["refunds"]] == [500]


async def test_more_than_what_remains_is_refused_and_nothing_is_refunded(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl
) -> None:
    await paid(client, shop)
    assert (await refund(client, shop.staff, shop.order_id, 2000)).status_code == 200

    response = await refund(client, shop.staff, shop.order_id, 501)

    assert response.status_code == 409, response.text
    assert problem(response)["code"] == "refund_exceeds_remaining"
    assert problem(response)["remaining"] == {"amount": 500, "currency": "EUR"}
    assert [r["amount"] for r in (await sandbox.ledger())["refunds"]] == [2000]


async def test_restock_returns_the_stock_with_the_full_refund_only(
    client: httpx.AsyncClient, shop: Shop, container: Container
) -> None:
    await paid(client, shop)

    partial = await refund(client, shop.staff, shop.order_id, 100, restock=True)
    assert partial.status_code == 422, partial.text
    assert problem(partial)["code"] == "restock_needs_full_refund"

    full = await refund(client, shop.staff, shop.order_id, restock=True)
    assert full.status_code == 200, full.text
    assert await stock_of(container, shop.product_id) == 10


async def test_an_unpaid_order_cannot_be_refunded(client: httpx.AsyncClient, shop: Shop) -> None:
    response = await refund(client, shop.staff, shop.order_id)

    assert response.status_code == 409
    assert problem(response)["code"] == "order_not_refundable"


async def test_customers_cannot_refund(client: httpx.AsyncClient, shop: Shop) -> None:
    await paid(client, shop)

    response = await refund(client, shop.customer, shop.order_id)

    assert response.status_code == 403


async def test_a_refund_the_gateway_fails_later_is_failed_and_leaves_the_order_paid(
    client: httpx.AsyncClient, shop: Shop, container: Container, sandbox: SandboxControl
) -> None:
    response = await pay(client, shop.customer, shop.order_id, "pm_card_refundFail")
    assert response.status_code == 200, response.text

    asked = await refund(client, shop.staff, shop.order_id)

    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] in {"pending", "failed"}
    # The failure arrives later (refund.failed); settling asks the gateway.
    for _ in range(20):
        async with unit_of_work(container.database) as uow:
            await payment_service.settle_refund(uow, container.payments, UUID(asked.json()["id"]))
        [row] = (await payments_of(client, shop.staff, shop.order_id))["refunds"]
        if row["status"] != "pending":
            break
    assert row["status"] == "failed"
    assert (await stored_order(container, shop.order_id)).status is OrderStatus.PAID

"""What reconciliation and cancellation settle: a charge orderdesk cannot keep is
refunded once, an attempt that never got an intent ends, a payment the gateway
refuses outright ends the attempt with a 409 instead of a 503."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import httpx

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.orders.models import OrderStatus
from orderdesk.payments import service as payment_service
from orderdesk.payments.models import AttemptStatus, PaymentAttempt
from tests.factories import API, create_product, place_order, stored_order
from tests.helpers import drain_outbox, problem
from tests.integration.payments.conftest import SandboxControl, Shop, pay, payments_of


async def test_a_success_that_lands_after_the_order_was_cancelled_is_refunded_once(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl, container: Container
) -> None:
    pending = await pay(client, shop.customer, shop.order_id, "pm_card_authenticationRequired")
    assert pending.status_code == 202, pending.text
    # The customer authenticates (the gateway charges), but orderdesk has not heard
    # of it when the order is cancelled.
    await sandbox.authenticate(pending.json()["client_secret"].split("_secret_")[0])
    cancelled = await client.post(f"{API}/orders/{shop.order_id}/cancel", headers=shop.customer)
    assert cancelled.status_code == 200, cancelled.text
    await drain_outbox(container)
    # Told again (a webhook, a reconciliation): no second refund.
    async with unit_of_work(container.database) as uow:
        await payment_service.settle_attempt(
            uow, container.payments, UUID(pending.json()["payment_id"])
        )
    await drain_outbox(container)

    assert (await stored_order(container, shop.order_id)).status is OrderStatus.CANCELLED
    [charge] = await sandbox.charges_for(shop.order_id)
    refunds = [
        r
        for r in (await sandbox.ledger())["refunds"]
        if r["payment_intent"] == charge["payment_intent"]
    ]
    assert [(r["amount"], r["status"]) for r in refunds] == [(2500, "succeeded")]
    listed = await payments_of(client, shop.staff, shop.order_id)
    assert [(r["reason"], r["status"]) for r in listed["refunds"]] == [
        ("order_not_payable", "succeeded")
    ]


async def test_reconciliation_ends_an_attempt_that_never_got_an_intent(
    shop: Shop, container: Container
) -> None:
    async with unit_of_work(container.database) as uow:
        attempt = PaymentAttempt(
            order_id=UUID(shop.order_id), attempt_no=1, amount=2500, currency="EUR"
        )
        uow.session.add(attempt)
        await uow.flush()
        attempt.created_at = uow.now() - timedelta(hours=1)
        attempt_id = attempt.id

    async with unit_of_work(container.database) as uow:
        queued = await payment_service.queue_reconciliation(uow, older_than=timedelta(0))
    await drain_outbox(container)

    assert queued >= 1
    async with container.database.sessions() as session:
        ended = await session.get(PaymentAttempt, attempt_id)
    assert ended is not None
    assert ended.status is AttemptStatus.FAILED


async def test_a_payment_the_gateway_refuses_outright_is_a_409_not_a_503(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    # A free order: the gateway refuses an intent for nothing.
    product = await create_product(client, shop.staff, stock=5, amount=0)
    order = await place_order(client, shop.customer, (product["id"], 1))

    response = await pay(client, shop.customer, order["id"])

    assert response.status_code == 409, response.text
    assert problem(response)["code"] == "order_not_payable"
    [attempt] = (await payments_of(client, shop.customer, order["id"]))["payments"]
    assert attempt["status"] == "failed"

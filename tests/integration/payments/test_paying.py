"""Paying an order through the gateway (the sandbox, in process): one charge per
paid order whatever is retried, declines that leave the order payable, 3-D Secure
settled by asking the gateway."""

from __future__ import annotations

from uuid import UUID

import httpx

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.orders.models import OrderStatus
from orderdesk.payments import service as payment_service
from tests.factories import API, customer, stored_order
from tests.fakes import RecordingMailer
from tests.helpers import drain_outbox, problem
from tests.integration.payments.conftest import SandboxControl, Shop, pay, payments_of


async def test_a_good_card_pays_the_order_with_one_charge_and_a_receipt(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl, mailer: RecordingMailer
) -> None:
    response = await pay(client, shop.customer, shop.order_id)

    assert response.status_code == 200, response.text
    assert response.json()["id"] == shop.order_id
    assert response.json()["status"] == "paid"
    [charge] = await sandbox.charges_for(shop.order_id)
    assert (charge["amount"], charge["currency"]) == (2500, "eur")
    assert len(mailer.of_kind("order_paid")) == 1
    listed = await payments_of(client, shop.customer, shop.order_id)
    [attempt] = listed["payments"]
    assert attempt["status"] == "succeeded"
    assert listed["paid"] == {"amount": 2500, "currency": "EUR"}


async def test_a_retry_with_the_same_key_replays_the_answer_and_charges_nothing_more(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl
) -> None:
    first = await pay(client, shop.customer, shop.order_id, key="pay-once")
    again = await pay(client, shop.customer, shop.order_id, key="pay-once")

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(await sandbox.charges_for(shop.order_id)) == 1


async def test_paying_a_paid_order_again_with_a_new_key_is_refused_without_a_charge(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl
) -> None:
    assert (await pay(client, shop.customer, shop.order_id)).status_code == 200

    again = await pay(client, shop.customer, shop.order_id)

    assert again.status_code == 409
    assert problem(again)["code"] == "order_not_payable"
    assert len(await sandbox.charges_for(shop.order_id)) == 1


async def test_a_decline_is_a_402_and_the_order_can_be_paid_with_another_card(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl, container: Container
) -> None:
    declined = await pay(
        client, shop.customer, shop.order_id, "pm_card_visa_chargeDeclinedInsufficientFunds"
    )

    assert declined.status_code == 402, declined.text
    assert problem(declined)["code"] == "payment_declined"
    assert problem(declined)["decline_code"] == "insufficient_funds"
    assert (await stored_order(container, shop.order_id)).status is OrderStatus.PENDING_PAYMENT
    assert await sandbox.charges_for(shop.order_id) == []

    paid = await pay(client, shop.customer, shop.order_id, "pm_card_visa")

    assert paid.status_code == 200, paid.text
    assert len(await sandbox.charges_for(shop.order_id)) == 1
    # One intent for the order: the second card confirmed the same attempt.
    [attempt] = (await payments_of(client, shop.customer, shop.order_id))["payments"]
    assert attempt["status"] == "succeeded"


async def test_a_declined_request_retried_with_its_key_runs_afresh(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl
) -> None:
    # A failure stores nothing under the key, even after the attempt was committed.
    first = await pay(client, shop.customer, shop.order_id, "pm_card_visa_chargeDeclined", key="k1")
    again = await pay(client, shop.customer, shop.order_id, "pm_card_visa_chargeDeclined", key="k1")

    assert first.status_code == again.status_code == 402
    assert "Idempotent-Replayed" not in again.headers


async def test_an_unknown_payment_method_is_a_422_and_leaves_the_order_payable(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    response = await pay(client, shop.customer, shop.order_id, "pm_no_such_card")

    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "invalid_payment_method"
    assert (await pay(client, shop.customer, shop.order_id)).status_code == 200


async def test_three_d_secure_answers_202_then_the_authenticated_payment_settles(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl, container: Container
) -> None:
    pending = await pay(client, shop.customer, shop.order_id, "pm_card_authenticationRequired")

    assert pending.status_code == 202, pending.text
    body = pending.json()
    assert body["status"] == "requires_action"
    assert body["client_secret"]
    intent_id = body["client_secret"].split("_secret_")[0]
    await sandbox.authenticate(intent_id)
    assert await sandbox.charges_for(shop.order_id) != []

    # Settled by asking the gateway (what reconciliation or the next pay does).
    async with unit_of_work(container.database) as uow:
        settled = await payment_service.settle_attempt(
            uow, container.payments, UUID(body["payment_id"])
        )
    await drain_outbox(container)

    assert settled is not None
    assert settled.value == "succeeded"
    assert (await stored_order(container, shop.order_id)).status is OrderStatus.PAID
    assert len(await sandbox.charges_for(shop.order_id)) == 1


async def test_someone_elses_order_is_not_found(client: httpx.AsyncClient, shop: Shop) -> None:
    _, stranger = await customer(client)

    response = await pay(client, stranger, shop.order_id)

    assert response.status_code == 404
    assert problem(response)["code"] == "order_not_found"


async def test_a_pay_without_an_idempotency_key_is_refused(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    response = await client.post(
        f"{API}/orders/{shop.order_id}/pay",
        json={"payment_method": "pm_card_visa"},
        headers=shop.customer,
    )

    assert response.status_code == 400, response.text
    assert problem(response)["code"] == "idempotency_key_required"


async def test_cancelling_an_order_cancels_its_open_intent(
    client: httpx.AsyncClient, shop: Shop, sandbox: SandboxControl, container: Container
) -> None:
    declined = await pay(client, shop.customer, shop.order_id, "pm_card_visa_chargeDeclined")
    assert declined.status_code == 402

    cancelled = await client.post(f"{API}/orders/{shop.order_id}/cancel", headers=shop.customer)
    assert cancelled.status_code == 200, cancelled.text
    await drain_outbox(container)

    [attempt] = (await payments_of(client, shop.customer, shop.order_id))["payments"]
    assert attempt["status"] == "canceled"
    assert await sandbox.charges_for(shop.order_id) == []

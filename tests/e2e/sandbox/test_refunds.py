"""Refunds through the SDK: partial, full, over the remainder, already refunded,
unpaid intents, the refund-fail card, and the charge's view of them."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.e2e.sandbox.conftest import SANDBOX_MARKS, paid_intent
from tests.sandbox_process import SandboxProcess

pytestmark = SANDBOX_MARKS


def test_partial_then_the_rest_refunds_the_whole_charge(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess
) -> None:
    intent = paid_intent(client, amount=1000)
    first = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 300, "reason": "requested_by_customer"}
    )
    assert (first.status, first.amount) == ("succeeded", 300)
    assert first.id.startswith("re_")
    rest = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 700
    assert isinstance(intent.latest_charge, str)
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    assert [r.id for r in charge.refunds.data] == [rest.id, first.id]
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert client.v1.refunds.retrieve(first.id).amount == 300
    ledger = sandbox_gateway.ledger()
    assert ledger["charges"][0]["refunded_amount"] == 1000
    assert [(r["id"], r["amount"], r["status"]) for r in ledger["refunds"]] == [
        (first.id, 300, "succeeded"),
        (rest.id, 700, "succeeded"),
    ]


def test_a_fully_refunded_charge_answers_charge_already_refunded(
    client: stripe.StripeClient,
) -> None:
    intent = paid_intent(client, amount=500)
    client.v1.refunds.create(params={"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1})
    assert caught.value.code == "charge_already_refunded"


def test_more_than_the_remainder_is_amount_too_large_on_amount(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess
) -> None:
    intent = paid_intent(client, amount=500)
    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 200})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 301})
    assert (caught.value.code, caught.value.param) == ("amount_too_large", "amount")
    assert "greater than unrefunded amount" in str(caught.value.user_message)
    assert len(sandbox_gateway.ledger()["refunds"]) == 1


def test_an_unpaid_intent_has_nothing_to_refund(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    assert caught.value.http_status == 400
    assert caught.value.param == "payment_intent"
    assert "does not have a successful charge to refund" in str(caught.value.user_message)


def test_refund_by_charge_id(client: stripe.StripeClient) -> None:
    intent = paid_intent(client, amount=800)
    assert isinstance(intent.latest_charge, str)
    refund = client.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 100})
    assert (refund.charge, refund.payment_intent) == (intent.latest_charge, intent.id)


def test_refund_fail_card_goes_pending_then_failed_and_gives_the_money_back(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess
) -> None:
    intent = paid_intent(client, amount=900, pm="pm_card_refundFail")
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert refund.status == "pending"
    deadline = time.monotonic() + 5
    while client.v1.refunds.retrieve(refund.id).status == "pending":
        assert time.monotonic() < deadline, "the refund never failed"
        time.sleep(0.05)
    failed = client.v1.refunds.retrieve(refund.id)
    assert failed.status == "failed"
    assert failed.failure_reason is not None
    assert sandbox_gateway.ledger()["refunds"][0]["status"] == "failed"
    assert sandbox_gateway.ledger()["charges"][0]["refunded_amount"] == 0
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert "refund.failed" in types
    assert "refund.updated" in types

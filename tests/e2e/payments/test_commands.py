"""The payment commands against a running stack: reconciliation settles what a lost
answer and a lost webhook left open, and the webhook endpoint is registered at the
gateway with its secret printed once."""

from __future__ import annotations

from tests.e2e.payments.conftest import (
    API,
    PaymentStack,
    charges_of,
    new_order,
    pay,
)

CONFIRM = "/v1/payment_intents/*/confirm"
INTENTS = "/v1/payment_intents/*"


def test_reconcile_settles_a_payment_whose_answer_and_webhook_were_lost(
    stack: PaymentStack,
) -> None:
    stack.sandbox.set_faults(
        [
            # The charge happens, its answer never arrives in time...
            {
                "fault": "charge_then_timeout",
                "method": "POST",
                "path": "/v1/payment_intents/*/confirm",
            },
            # ...reading it back fails while the fault lasts...
            {
                "fault": "error_before",
                "method": "GET",
                "path": "/v1/payment_intents/*",
                "status": 503,
            },
            # ...and its webhook is lost.
            {"fault": "webhook_drop"},
        ]
    )
    try:
        with stack.client() as http:
            order = new_order(stack, http)
            pending = pay(http, order)
    finally:
        stack.sandbox.clear_faults()

    assert pending.status_code == 202, pending.text
    assert pending.json()["status"] == "processing"
    assert len(charges_of(stack, order.id)) == 1

    result = stack.cli("payments", "reconcile", "--older-than", "0")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "settled" in result.stdout
    with stack.client() as http:
        status = http.get(f"{API}/orders/{order.id}", headers=order.customer).json()["status"]
    assert status == "paid"
    assert len(charges_of(stack, order.id)) == 1


def test_register_webhook_creates_the_endpoint_and_prints_its_secret_once(
    stack: PaymentStack,
) -> None:
    url = "https://shop.example.com/api/v1/payments/webhook"

    result = stack.cli("payments", "register-webhook", url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "whsec_" in result.stdout
    client = stack.sandbox.stripe_client()
    endpoints = [e for e in client.v1.webhook_endpoints.list().data if e.url == url]
    assert len(endpoints) == 1
    assert "payment_intent.succeeded" in endpoints[0].enabled_events

"""Stripe-shaped dicts read into `Intent`, `Refund` and `GatewayEvent`, and the same
through the SDK's own `StripeObject` (the adapter reads `.to_dict()`)."""

from __future__ import annotations

import json

import pytest
import stripe

from orderdesk.payments.gateway import (
    Decline,
    IntentStatus,
    InvalidSignature,
    MalformedEvent,
    RefundStatus,
)
from orderdesk.payments.signatures import sign
from orderdesk.payments.stripe_gateway import StripeConfig, StripeGateway
from orderdesk.payments.stripe_objects import event_from, intent_from, refund_from
from tests.unit.payments.stripe_shapes import CREATED, event, payment_intent, refund

SECRET = "whsec_unit"


def test_an_intent_keeps_the_fields_the_domain_reads() -> None:
    intent = intent_from(payment_intent(status="requires_action", currency="EUR"))

    assert intent.id == "pi_3QaBcDeFgHiJkLmN0pQrStUv"
    assert intent.status is IntentStatus.REQUIRES_ACTION
    assert intent.amount == 2599
    assert intent.currency == "eur"
    assert intent.metadata == {"order_id": "o_1", "attempt": "1"}
    assert intent.client_secret == "pi_3QaBcDeFgHiJkLmN0pQrStUv_secret_xYz123"
    assert intent.latest_charge is None
    assert intent.last_error is None


@pytest.mark.parametrize(
    "latest_charge",
    [
        pytest.param("ch_1", id="id"),
        pytest.param({"id": "ch_1", "object": "charge", "amount": 2599}, id="expanded"),
    ],
)
def test_latest_charge_is_read_as_an_id_whether_expanded_or_not(latest_charge: object) -> None:
    intent = intent_from(payment_intent(status="succeeded", latest_charge=latest_charge))

    assert intent.latest_charge == "ch_1"


def test_a_failed_attempts_error_becomes_a_decline() -> None:
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "lost_card",
        "message": "Your card was declined.",
        "payment_method": {"id": "pm_1"},
    }

    intent = intent_from(payment_intent(last_payment_error=error))

    assert intent.last_error == Decline("card_declined", "lost_card", "Your card was declined.")


def test_an_intent_with_a_status_the_port_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="requires_magic"):
        intent_from(payment_intent(status="requires_magic"))


def test_a_refund_reads_its_intent_whether_expanded_or_not() -> None:
    expanded = refund_from(refund(payment_intent=payment_intent(), status="pending"))
    plain = refund_from(refund(status="failed", failure_reason="expired_or_canceled_card"))

    assert expanded.payment_intent == plain.payment_intent == "pi_3QaBcDeFgHiJkLmN0pQrStUv"
    assert expanded.status is RefundStatus.PENDING
    assert (plain.status, plain.failure_reason) == (RefundStatus.FAILED, "expired_or_canceled_card")
    assert plain.amount == 500
    assert plain.metadata == {"refund_id": "r_1"}


def test_a_payment_intent_event_carries_the_intent_snapshot() -> None:
    parsed = event_from(event("payment_intent.succeeded", payment_intent(status="succeeded")))

    assert (parsed.id, parsed.type, parsed.created) == (
        "evt_3QaBcDeFgHiJkLmN0pQrStUv",
        "payment_intent.succeeded",
        CREATED,
    )
    assert parsed.intent is not None
    assert parsed.intent.status is IntentStatus.SUCCEEDED
    assert parsed.refund is None


def test_a_refund_event_carries_the_refund() -> None:
    parsed = event_from(event("refund.failed", refund(status="failed")))

    assert parsed.refund is not None
    assert parsed.refund.status is RefundStatus.FAILED
    assert parsed.intent is None


def test_charge_refunded_carries_the_newest_listed_refund_with_the_charges_intent() -> None:
    older = refund(id="re_old", created=CREATED - 60, payment_intent=None)
    newer = refund(id="re_new", created=CREATED, payment_intent=None)
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_9",
        "amount_refunded": 1000,
        "refunds": {"object": "list", "data": [older, newer], "has_more": False},
    }

    parsed = event_from(event("charge.refunded", charge))

    assert parsed.refund is not None
    assert (parsed.refund.id, parsed.refund.payment_intent) == ("re_new", "pi_9")


def test_charge_refunded_without_listed_refunds_carries_none() -> None:
    parsed = event_from(event("charge.refunded", {"id": "ch_1", "object": "charge"}))

    assert parsed.refund is None
    assert parsed.intent is None


def test_an_event_of_another_type_is_read_with_neither_object() -> None:
    parsed = event_from(event("customer.created", {"id": "cus_1", "object": "customer"}))

    assert parsed.type == "customer.created"
    assert parsed.intent is None
    assert parsed.refund is None


def test_a_stripe_object_from_the_sdk_converts_through_to_dict() -> None:
    sdk_object = stripe.PaymentIntent.construct_from(
        payment_intent(status="succeeded", latest_charge={"id": "ch_2", "object": "charge"}),
        "sk_test_x",
    )

    intent = intent_from(sdk_object.to_dict())

    assert intent.status is IntentStatus.SUCCEEDED
    assert intent.latest_charge == "ch_2"
    assert dict(intent.metadata) == {"order_id": "o_1", "attempt": "1"}


# --- parse_webhook: verification, then reading ----------------------------------------


def gateway(now: float = CREATED) -> StripeGateway:
    config = StripeConfig(api_key="sk_test_unit", webhook_secrets=("whsec_old", SECRET))
    return StripeGateway(config, wall_clock=lambda: now)


async def test_parse_webhook_verifies_with_any_configured_secret_then_reads() -> None:
    body = json.dumps(event("payment_intent.canceled", payment_intent(status="canceled"))).encode()
    adapter = gateway()

    parsed = adapter.parse_webhook(body, sign(body, SECRET, CREATED))

    assert parsed.intent is not None
    assert parsed.intent.status is IntentStatus.CANCELED
    await adapter.close()


async def test_parse_webhook_refuses_a_bad_signature_before_reading() -> None:
    adapter = gateway()

    with pytest.raises(InvalidSignature):
        adapter.parse_webhook(b"not even json", sign(b"something else", SECRET, CREATED))
    await adapter.close()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(b'{"id": "evt_1"}', id="no-type"),
    ],
)
async def test_parse_webhook_refuses_a_signed_body_that_is_no_event(body: bytes) -> None:
    adapter = gateway()

    with pytest.raises(MalformedEvent):
        adapter.parse_webhook(body, sign(body, SECRET, CREATED))
    await adapter.close()

"""Webhooks from the sandbox process to a real loopback receiver, verified with the
stripe SDK's own `construct_event`: the event shape, redelivery until a 2xx,
endpoints registered through the API, and the webhook faults."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from tests.e2e.sandbox.conftest import (
    SANDBOX_MARKS,
    WEBHOOK_SECRET,
    Delivery,
    WebhookReceiver,
    paid_intent,
)
from tests.sandbox_process import SandboxProcess

pytestmark = SANDBOX_MARKS


def _types(deliveries: list[Delivery]) -> list[str]:
    return [json.loads(d.body)["type"] for d in deliveries]


def test_a_payment_sends_signed_events_in_stripes_shape(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    client = webhook_sandbox.stripe_client()
    intent = paid_intent(client, metadata={"order_id": "o_9"}, pm="pm_card_visa")
    seen = webhook_receiver.wait_for(lambda d: len(d) >= 3)
    assert sorted(_types(seen)) == [
        "charge.succeeded",
        "payment_intent.created",
        "payment_intent.succeeded",
    ]
    delivery = next(d for d in seen if _types([d]) == ["payment_intent.succeeded"])
    assert delivery.headers["content-type"] == "application/json; charset=utf-8"
    assert b": " not in delivery.body  # compact JSON
    event = delivery.event()
    assert event.id.startswith("evt_")
    assert event.type == "payment_intent.succeeded"
    assert event.livemode is False
    assert event.api_version == "2026-10-28.endive"
    snapshot = event.data.object
    assert snapshot["id"] == intent.id
    assert snapshot["status"] == "succeeded"
    assert snapshot["metadata"]["order_id"] == "o_9"
    assert event.request is not None
    assert event.request.id is not None
    assert event.request.id.startswith("req_")
    assert event.request.idempotency_key is not None  # the SDK's automatic key
    listed = client.v1.events.retrieve(event.id)
    assert listed.type == "payment_intent.succeeded"


def test_a_failing_receiver_gets_the_event_again_until_it_answers_2xx(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script.extend([500, 503])
    client = webhook_sandbox.stripe_client()
    client.v1.payment_intents.create(
        params={"amount": 100, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    seen = webhook_receiver.wait_for(lambda d: len(d) >= 3)
    assert len({d.event().id for d in seen}) == 1
    signatures = {d.headers["stripe-signature"] for d in seen}
    assert len(signatures) >= 1  # each attempt is signed when sent
    time.sleep(0.3)
    assert len(webhook_receiver.deliveries) == 3  # none after the 200
    outcomes = [d["outcome"] for d in webhook_sandbox.deliveries()]
    assert outcomes == ["500", "503", "200"]


def test_retries_stop_after_the_attempt_limit(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script.extend([500] * 10)
    client = webhook_sandbox.stripe_client()
    client.v1.payment_intents.create(
        params={"amount": 100, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    webhook_receiver.wait_for(lambda d: len(d) >= 4)
    time.sleep(0.8)
    assert len(webhook_receiver.deliveries) == 4  # --webhook-max-attempts 4


def test_webhook_duplicate_delivers_n_copies(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    webhook_sandbox.set_faults(
        [{"fault": "webhook_duplicate", "event_type": "payment_intent.created", "copies": 3}]
    )
    client = webhook_sandbox.stripe_client()
    client.v1.payment_intents.create(
        params={"amount": 100, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    seen = webhook_receiver.wait_for(lambda d: len(d) >= 3)
    assert len({d.event().id for d in seen}) == 1


def test_webhook_drop_never_delivers_but_the_event_is_listed(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    webhook_sandbox.set_faults([{"fault": "webhook_drop", "event_type": "payment_intent.*"}])
    client = webhook_sandbox.stripe_client()
    paid_intent(client)
    webhook_receiver.wait_for(lambda d: len(d) >= 1)  # charge.succeeded still comes
    time.sleep(0.3)
    assert _types(webhook_receiver.deliveries) == ["charge.succeeded"]
    listed = client.v1.events.list(params={"type": "payment_intent.succeeded"})
    assert len(listed.data) == 1


def test_webhook_bad_signature_is_rejected_by_the_sdk(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    webhook_sandbox.set_faults([{"fault": "webhook_bad_signature", "once": True}])
    client = webhook_sandbox.stripe_client()
    client.v1.payment_intents.create(
        params={"amount": 100, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    [forged] = webhook_receiver.wait_for(lambda d: len(d) >= 1)
    with pytest.raises(stripe.SignatureVerificationError):
        forged.event()


def test_webhook_reorder_sends_the_later_event_first(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    webhook_sandbox.set_faults(
        [{"fault": "webhook_reorder", "event_type": "payment_intent.*", "copies": 2}]
    )
    client = webhook_sandbox.stripe_client()
    paid_intent(client)
    webhook_receiver.wait_for(lambda d: len(d) >= 3)
    intent_events = [t for t in _types(webhook_receiver.deliveries) if t.startswith("payment_")]
    assert intent_events == ["payment_intent.succeeded", "payment_intent.created"]


def test_webhook_delay_delivers_late(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    webhook_sandbox.set_faults([{"fault": "webhook_delay", "latency_ms": 600}])
    client = webhook_sandbox.stripe_client()
    started = time.monotonic()
    client.v1.payment_intents.create(
        params={"amount": 100, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    assert time.monotonic() - started < 0.5  # the API answer does not wait
    time.sleep(0.3)
    assert webhook_receiver.deliveries == []
    webhook_receiver.wait_for(lambda d: len(d) >= 1)
    assert time.monotonic() - started >= 0.6


def test_an_endpoint_registered_through_the_api_gets_its_own_signed_events(
    webhook_sandbox: SandboxProcess, webhook_receiver: WebhookReceiver
) -> None:
    client = webhook_sandbox.stripe_client()
    endpoint = client.v1.webhook_endpoints.create(
        params={
            "url": webhook_receiver.url + "?second",
            "enabled_events": ["charge.refunded"],
            "api_version": "2026-10-28.endive",
        }
    )
    assert endpoint.id.startswith("we_")
    assert endpoint.secret is not None
    assert endpoint.secret.startswith("whsec_")
    assert "secret" not in client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    intent = paid_intent(client)
    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    webhook_receiver.wait_for(lambda d: len(webhook_receiver.of_type("charge.refunded")) >= 2)
    secrets_that_verify = set()
    for delivery in webhook_receiver.of_type("charge.refunded"):
        for secret in (WEBHOOK_SECRET, endpoint.secret):
            try:
                delivery.event(secret)
                secrets_that_verify.add(secret)
            except stripe.SignatureVerificationError:
                pass
    assert secrets_that_verify == {WEBHOOK_SECRET, endpoint.secret}
    deleted = client.v1.webhook_endpoints.delete(endpoint.id)
    assert deleted.deleted is True


def test_events_list_filters_by_type_and_created_and_pages(
    webhook_sandbox: SandboxProcess,
) -> None:
    client = webhook_sandbox.stripe_client()
    for _ in range(3):
        paid_intent(client)
    succeeded = client.v1.events.list(params={"type": "payment_intent.succeeded", "limit": 2})
    assert len(succeeded.data) == 2
    assert succeeded.has_more is True
    rest = client.v1.events.list(
        params={
            "type": "payment_intent.succeeded",
            "limit": 2,
            "starting_after": succeeded.data[-1].id,
        }
    )
    assert len(rest.data) == 1
    assert rest.has_more is False
    newest = succeeded.data[0].created
    assert client.v1.events.list(params={"created": {"gt": newest}}).data == []

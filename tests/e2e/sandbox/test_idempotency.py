"""Stripe's idempotency through the SDK: byte-for-byte replays with the replay
headers, a mismatch as IdempotencyError, a key in flight as 409, saved failures,
unsaved validation errors, and expiry after 24 h of sandbox clock."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe

from tests.e2e.sandbox.conftest import SANDBOX_MARKS
from tests.sandbox_process import SandboxProcess

pytestmark = SANDBOX_MARKS
CREATE = {"amount": 1000, "currency": "eur", "allowed_payment_method_types": ["card"]}


def _post(sandbox: SandboxProcess, path: str, body: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}{path}",
        headers={
            "Authorization": f"Bearer {sandbox.api_key}",
            "Idempotency-Key": key,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        content=body.encode(),
        timeout=10,
    )


def test_a_replay_is_byte_for_byte_with_the_replay_headers(sandbox_gateway: SandboxProcess) -> None:
    body = "amount=1000&currency=eur&allowed_payment_method_types[0]=card"
    first = _post(sandbox_gateway, "/v1/payment_intents", body, "replay-1")
    second = _post(sandbox_gateway, "/v1/payment_intents", body, "replay-1")
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["original-request"] == first.headers["request-id"]
    assert second.headers["request-id"] != first.headers["request-id"]
    assert "idempotent-replayed" not in first.headers


def test_the_sdk_sees_the_same_intent_under_the_same_key(client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "orderdesk:o_1:pay1:create"}
    first = client.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]
    second = client.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]
    assert first.id == second.id
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"


def test_other_parameters_under_a_key_are_an_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "mismatch-1"}
    client.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.payment_intents.create(
            params={**CREATE, "amount": 1001},  # type: ignore[arg-type]
            options=options,
        )
    assert caught.value.http_status == 400
    assert "Try using a key other than 'mismatch-1'" in str(caught.value.user_message)


def test_another_endpoint_under_a_key_is_an_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    intent = client.v1.payment_intents.create(params=CREATE)  # type: ignore[arg-type]
    options: stripe.RequestOptions = {"idempotency_key": "endpoint-1"}
    client.v1.payment_intents.cancel(intent.id, options=options)
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]


def test_a_decline_is_saved_and_replayed_under_its_key(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess
) -> None:
    intent = client.v1.payment_intents.create(params=CREATE)  # type: ignore[arg-type]
    options: stripe.RequestOptions = {"idempotency_key": "decline-1"}
    params: stripe.params.PaymentIntentConfirmParams = {
        "payment_method": "pm_card_visa_chargeDeclined"
    }
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            client.v1.payment_intents.confirm(intent.id, params=params, options=options)
    assert caught.value.headers is not None
    assert caught.value.headers.get("Idempotent-Replayed") == "true"
    confirms = sandbox_gateway.requests(f"/v1/payment_intents/{intent.id}/confirm")
    assert [r["replayed"] for r in confirms] == [False, True]


def test_a_validation_error_is_not_saved_so_the_key_can_be_used_again(
    client: stripe.StripeClient,
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "fix-and-retry"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"amount": 1000, "allowed_payment_method_types": ["card"]},  # type: ignore[typeddict-item]
            options=options,
        )
    created = client.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]
    assert created.status == "requires_payment_method"


def test_a_key_over_255_characters_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create(
            params=CREATE,  # type: ignore[arg-type]
            options={"idempotency_key": "k" * 256},
        )
    assert caught.value.http_status == 400


def test_get_ignores_the_key(sandbox_gateway: SandboxProcess, client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(params=CREATE)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {sandbox_gateway.api_key}", "Idempotency-Key": "get-1"}
    for _ in range(2):
        response = httpx.get(
            f"{sandbox_gateway.url}/v1/payment_intents/{intent.id}", headers=headers
        )
        assert response.status_code == 200
        assert "idempotent-replayed" not in response.headers
        assert "idempotency-key" not in response.headers


def test_a_key_expires_after_24_hours_of_sandbox_clock(sandbox_gateway: SandboxProcess) -> None:
    body = "amount=1000&currency=eur&allowed_payment_method_types[0]=card"
    first = _post(sandbox_gateway, "/v1/payment_intents", body, "ttl-1")
    sandbox_gateway.advance_clock(24 * 3600 - 10)
    assert _post(sandbox_gateway, "/v1/payment_intents", body, "ttl-1").content == first.content
    sandbox_gateway.advance_clock(10)
    fresh = _post(sandbox_gateway, "/v1/payment_intents", body, "ttl-1")
    assert fresh.status_code == 200
    assert "idempotent-replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]


def test_a_key_in_flight_is_409_then_the_replay(sandbox_gateway: SandboxProcess) -> None:
    """`hang` holds the first request with its key claimed: a same-key retry is 409
    (`idempotency_key_in_use`) until the first finishes, then gets its replay."""
    sandbox_gateway.set_faults(
        [{"path": "/v1/payment_intents", "fault": "hang", "latency_ms": 1500, "once": True}]
    )
    client = sandbox_gateway.stripe_client(timeout=0.3, max_network_retries=0)
    options: stripe.RequestOptions = {"idempotency_key": "in-flight-1"}
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]
    with pytest.raises(stripe.APIError) as caught:
        client.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]
    assert caught.value.http_status == 409
    assert caught.value.error is not None
    assert caught.value.error.code == "idempotency_key_in_use"
    time.sleep(1.4)
    patient = sandbox_gateway.stripe_client(timeout=5, max_network_retries=0)
    replayed = patient.v1.payment_intents.create(params=CREATE, options=options)  # type: ignore[arg-type]
    assert replayed.last_response is not None
    assert replayed.last_response.headers["Idempotent-Replayed"] == "true"
    creates = sandbox_gateway.requests("/v1/payment_intents")
    assert [r["status"] for r in creates] == [200, 409, 200]

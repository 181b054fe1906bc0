"""Each API fault through the SDK, with what the ledger and a same-key retry see."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import stripe

from tests.e2e.sandbox.conftest import SANDBOX_MARKS
from tests.sandbox_process import SandboxProcess

pytestmark = SANDBOX_MARKS
CONFIRM_PATH = "/v1/payment_intents/*/confirm"


def _intent(client: stripe.StripeClient) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "allowed_payment_method_types": ["card"],
        }
    )


def test_error_before_is_retried_by_the_sdk_and_charges_once(
    sandbox_gateway: SandboxProcess,
) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=2)
    intent = _intent(client)
    sandbox_gateway.set_faults([{"path": CONFIRM_PATH, "fault": "error_before", "once": True}])
    paid = client.v1.payment_intents.confirm(intent.id)
    assert paid.status == "succeeded"
    assert len(sandbox_gateway.ledger()["charges"]) == 1
    confirms = sandbox_gateway.requests(f"/v1/payment_intents/{intent.id}/confirm")
    assert [(r["status"], r["fault"]) for r in confirms] == [(500, "error_before"), (200, None)]
    assert confirms[0]["idempotency_key"] == confirms[1]["idempotency_key"]


def test_error_before_429_is_a_rate_limit_error_not_retried(
    sandbox_gateway: SandboxProcess,
) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=2)
    intent = _intent(client)
    sandbox_gateway.set_faults([{"path": CONFIRM_PATH, "fault": "error_before", "status": 429}])
    with pytest.raises(stripe.RateLimitError):
        client.v1.payment_intents.confirm(intent.id)
    assert len(sandbox_gateway.requests(f"/v1/payment_intents/{intent.id}/confirm")) == 1
    assert sandbox_gateway.ledger()["charges"] == []


def test_error_after_charges_once_and_replays_the_500(sandbox_gateway: SandboxProcess) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=2)
    intent = _intent(client)
    sandbox_gateway.set_faults([{"path": CONFIRM_PATH, "fault": "error_after", "once": True}])
    options: stripe.RequestOptions = {"idempotency_key": "after-1"}
    with pytest.raises(stripe.APIError) as caught:
        client.v1.payment_intents.confirm(intent.id, options=options)
    assert caught.value.http_status == 500
    # `Stripe-Should-Retry: false` on a saved 500: the SDK does not retry it.
    assert len(sandbox_gateway.requests(f"/v1/payment_intents/{intent.id}/confirm")) == 1
    assert len(sandbox_gateway.ledger()["charges"]) == 1
    with pytest.raises(stripe.APIError) as replayed:
        client.v1.payment_intents.confirm(intent.id, options=options)
    assert replayed.value.headers is not None
    assert replayed.value.headers.get("Idempotent-Replayed") == "true"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert len(sandbox_gateway.ledger()["charges"]) == 1


def test_charge_then_timeout_charges_once_and_the_intent_has_succeeded(
    sandbox_gateway: SandboxProcess,
) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=1, timeout=0.3)
    intent = _intent(client)
    sandbox_gateway.set_faults(
        [{"path": CONFIRM_PATH, "fault": "charge_then_timeout", "latency_ms": 800}]
    )
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.confirm(intent.id)
    assert time.monotonic() - started < 3
    sandbox_gateway.clear_faults()
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert len(sandbox_gateway.ledger()["charges"]) == 1
    confirms = sandbox_gateway.requests(f"/v1/payment_intents/{intent.id}/confirm")
    assert [r["replayed"] for r in confirms] == [False, True]  # the SDK's retry: a replay


def test_charge_then_timeout_once_lets_the_sdk_retry_get_the_replay(
    sandbox_gateway: SandboxProcess,
) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=1, timeout=0.3)
    intent = _intent(client)
    sandbox_gateway.set_faults(
        [{"path": CONFIRM_PATH, "fault": "charge_then_timeout", "latency_ms": 800, "once": True}]
    )
    paid = client.v1.payment_intents.confirm(intent.id)
    assert paid.status == "succeeded"
    assert paid.last_response is not None
    assert paid.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox_gateway.ledger()["charges"]) == 1


def test_connection_reset_is_an_api_connection_error(sandbox_gateway: SandboxProcess) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=0)
    intent = _intent(client)
    sandbox_gateway.set_faults([{"path": CONFIRM_PATH, "fault": "connection_reset"}])
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.confirm(intent.id)
    sandbox_gateway.clear_faults()
    # The effect happened before the connection dropped.
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert len(sandbox_gateway.ledger()["charges"]) == 1


def test_connection_reset_once_is_healed_by_the_sdk_retry(sandbox_gateway: SandboxProcess) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=1)
    intent = _intent(client)
    sandbox_gateway.set_faults([{"path": CONFIRM_PATH, "fault": "connection_reset", "once": True}])
    assert client.v1.payment_intents.confirm(intent.id).status == "succeeded"
    assert len(sandbox_gateway.ledger()["charges"]) == 1


def test_latency_is_slow_but_succeeds(sandbox_gateway: SandboxProcess) -> None:
    client = sandbox_gateway.stripe_client()
    intent = _intent(client)
    sandbox_gateway.set_faults([{"path": CONFIRM_PATH, "fault": "latency", "latency_ms": 300}])
    started = time.monotonic()
    assert client.v1.payment_intents.confirm(intent.id).status == "succeeded"
    assert time.monotonic() - started >= 0.3


def test_hang_holds_past_the_client_timeout_then_does_the_work(
    sandbox_gateway: SandboxProcess,
) -> None:
    client = sandbox_gateway.stripe_client(max_network_retries=0, timeout=0.3)
    intent = _intent(client)
    sandbox_gateway.set_faults(
        [{"path": CONFIRM_PATH, "fault": "hang", "latency_ms": 700, "once": True}]
    )
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.confirm(intent.id)
    assert sandbox_gateway.ledger()["charges"] == []  # still held
    deadline = time.monotonic() + 5
    while not sandbox_gateway.ledger()["charges"]:
        assert time.monotonic() < deadline, "the hung request never ran"
        time.sleep(0.05)
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_seeded_probability_fires_on_the_same_requests_every_run(
    sandbox_gateway: SandboxProcess,
) -> None:
    rule: dict[str, Any] = {
        "path": "/v1/events",
        "fault": "error_before",
        "probability": 0.5,
        "seed": 7,
    }
    headers = {"Authorization": f"Bearer {sandbox_gateway.api_key}"}
    runs = []
    for _ in range(2):
        sandbox_gateway.set_faults([rule])
        runs.append(
            [
                httpx.get(f"{sandbox_gateway.url}/v1/events", headers=headers).status_code
                for _ in range(20)
            ]
        )
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}


def test_nth_fires_on_that_match_only(sandbox_gateway: SandboxProcess) -> None:
    sandbox_gateway.set_faults([{"path": "/v1/events", "fault": "error_before", "nth": 3}])
    headers = {"Authorization": f"Bearer {sandbox_gateway.api_key}"}
    statuses = [
        httpx.get(f"{sandbox_gateway.url}/v1/events", headers=headers).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 500, 200, 200]


def test_a_bad_rule_is_refused(sandbox_gateway: SandboxProcess) -> None:
    response = sandbox_gateway.control.post(
        "/_sandbox/faults", json={"rules": [{"fault": "meteor_strike"}]}
    )
    assert response.status_code == 400
    assert sandbox_gateway.faults() == []


def test_faults_given_on_the_command_line_are_in_force_from_the_start() -> None:
    from tests.sandbox_process import running_sandbox

    with running_sandbox(
        extra_args=["--fault", "fault=error_before,path=/v1/events,status=503"]
    ) as sandbox:
        response = httpx.get(
            f"{sandbox.url}/v1/events", headers={"Authorization": f"Bearer {sandbox.api_key}"}
        )
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "api_error"

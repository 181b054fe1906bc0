"""Payment intents through the real stripe SDK against the sandbox process: each
test card, declines, 3DS, cancel, capture, update, and Stripe's error mapping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from tests.e2e.sandbox.conftest import SANDBOX_MARKS, paid_intent
from tests.sandbox_process import SandboxProcess

pytestmark = SANDBOX_MARKS

SUCCEEDING = ["pm_card_visa", "pm_card_mastercard", "pm_card_refundFail"]
DECLINING = [
    ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
    ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_visa_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
]


@pytest.mark.parametrize("pm", SUCCEEDING)
def test_a_good_card_succeeds_with_exactly_one_charge(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess, pm: str
) -> None:
    created = client.v1.payment_intents.create(
        params={
            "amount": 1250,
            "currency": "eur",
            "metadata": {"order_id": "o 1/ä"},
            "allowed_payment_method_types": ["card"],
        }
    )
    assert created.status == "requires_payment_method"
    assert created.id.startswith("pi_")
    assert len(created.id) == 27
    assert created.client_secret.startswith(f"{created.id}_secret_")
    confirmed = client.v1.payment_intents.confirm(created.id, params={"payment_method": pm})
    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 1250
    again = client.v1.payment_intents.retrieve(created.id, params={"expand": ["latest_charge"]})
    charge = again.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.id.startswith("ch_")
    assert (charge.amount, charge.paid, charge.captured) == (1250, True, True)
    ledger = sandbox_gateway.ledger()
    assert [(c["id"], c["amount"], c["metadata"]) for c in ledger["charges"]] == [
        (charge.id, 1250, {"order_id": "o 1/ä"})
    ]


@pytest.mark.parametrize(("pm", "code", "decline_code"), DECLINING)
def test_a_declining_card_raises_card_error_and_sends_the_intent_back(
    client: stripe.StripeClient,
    sandbox_gateway: SandboxProcess,
    pm: str,
    code: str,
    decline_code: str,
) -> None:
    with pytest.raises(stripe.CardError) as caught:
        paid_intent(client, pm=pm)
    error = caught.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error is not None
    assert error.error.decline_code == decline_code
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
    intent = error.error.payment_intent
    assert intent is not None
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.decline_code == decline_code
    again = client.v1.payment_intents.retrieve(intent.id)
    assert again.status == "requires_payment_method"
    assert sandbox_gateway.ledger()["charges"] == []


def test_after_a_decline_another_card_pays_the_same_intent(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as caught:
        paid_intent(client, pm="pm_card_visa_chargeDeclined")
    assert caught.value.error is not None
    assert caught.value.error.payment_intent is not None
    intent_id = caught.value.error.payment_intent.id
    paid = client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "succeeded"
    assert paid.last_payment_error is None


@pytest.mark.parametrize("pm", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"])
def test_3ds_requires_action_then_authentication_succeeds(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess, pm: str
) -> None:
    intent = paid_intent(client, pm=pm)
    assert intent.status == "requires_action"
    assert intent.next_action is not None
    assert intent.next_action.type == "use_stripe_sdk"
    assert sandbox_gateway.ledger()["charges"] == []
    done = sandbox_gateway.authenticate(intent.id)
    assert done["status"] == "succeeded"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert len(sandbox_gateway.ledger()["charges"]) == 1


def test_failed_authentication_sends_the_intent_back(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess
) -> None:
    intent = paid_intent(client, pm="pm_card_authenticationRequired")
    failed = sandbox_gateway.authenticate(intent.id, outcome="failure")
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert sandbox_gateway.ledger()["charges"] == []


def test_an_unknown_payment_method_is_a_404_on_payment_method(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        paid_intent(client, pm="pm_card_nonsense")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    assert caught.value.param == "payment_method"


def test_confirming_a_paid_intent_is_unexpected_state_with_the_intent(
    client: stripe.StripeClient,
) -> None:
    intent = paid_intent(client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.confirm(intent.id)
    assert caught.value.http_status == 400
    assert caught.value.code == "payment_intent_unexpected_state"
    assert caught.value.error is not None
    assert caught.value.error.payment_intent is not None
    assert caught.value.error.payment_intent.status == "succeeded"


def test_cancel_then_any_operation_is_refused(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    canceled = client.v1.payment_intents.cancel(
        intent.id, params={"cancellation_reason": "abandoned"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert canceled.canceled_at is not None
    for attempt in (
        lambda: client.v1.payment_intents.cancel(intent.id),
        lambda: client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": "pm_card_visa"}
        ),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            attempt()
        assert caught.value.code == "payment_intent_unexpected_state"


def test_a_bad_cancellation_reason_is_refused(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "bored"})  # type: ignore[typeddict-item]
    assert caught.value.param == "cancellation_reason"


def test_manual_capture_authorises_then_captures_part(
    client: stripe.StripeClient, sandbox_gateway: SandboxProcess
) -> None:
    intent = paid_intent(client, amount=2000, capture_method="manual")
    assert (intent.status, intent.amount_capturable) == ("requires_capture", 2000)
    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 1500})
    assert (captured.status, captured.amount_received) == ("succeeded", 1500)
    [charge] = sandbox_gateway.ledger()["charges"]
    assert charge["captured"] is True
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.capture(intent.id)
    assert caught.value.code == "payment_intent_unexpected_state"


def test_update_changes_metadata_and_amount_before_confirming(
    client: stripe.StripeClient,
) -> None:
    intent = client.v1.payment_intents.create(
        params={
            "amount": 500,
            "currency": "eur",
            "metadata": {"keep": "1", "drop": "2"},
            "allowed_payment_method_types": ["card"],
        }
    )
    updated = client.v1.payment_intents.update(
        intent.id,
        params={
            "amount": 700,
            "metadata": {"drop": "", "new": "3"},
            "payment_method": "pm_card_visa",
        },
    )
    assert updated.amount == 700
    assert updated.metadata.to_dict() == {"keep": "1", "new": "3"}
    assert updated.status == "requires_confirmation"
    paid = client.v1.payment_intents.confirm(intent.id)
    assert paid.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.update(intent.id, params={"amount": 900})
    assert caught.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"currency": "eur"}, "amount", "parameter_missing"),
        ({"amount": 0, "currency": "eur"}, "amount", "parameter_invalid_integer"),
        ({"amount": 100}, "currency", "parameter_missing"),
        ({"amount": 100, "currency": "euro"}, "currency", "parameter_invalid"),
        (
            {"amount": 100, "currency": "eur", "metadata": {f"k{i}": "v" for i in range(51)}},
            "metadata",
            "parameter_invalid",
        ),
        (
            {
                "amount": 100,
                "currency": "eur",
                "allowed_payment_method_types": ["card"],
                "automatic_payment_methods": {"enabled": True},
            },
            "allowed_payment_method_types",
            "parameter_invalid",
        ),
    ],
)
def test_bad_create_parameters_are_400_naming_the_param(
    client: stripe.StripeClient, params: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
    assert caught.value.http_status == 400
    assert (caught.value.param, caught.value.code) == (param, code)


def test_confirm_with_redirects_allowed_needs_a_return_url(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={"amount": 100, "currency": "eur", "payment_method": "pm_card_visa"}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.confirm(intent.id)
    assert caught.value.param == "return_url"
    paid = client.v1.payment_intents.confirm(
        intent.id, params={"return_url": "https://shop.example/return"}
    )
    assert paid.status == "succeeded"


def test_removed_payment_method_types_is_refused(sandbox_gateway: SandboxProcess) -> None:
    response = httpx.post(
        f"{sandbox_gateway.url}/v1/payment_intents",
        headers={"Authorization": f"Bearer {sandbox_gateway.api_key}"},
        content=b"amount=100&currency=eur&payment_method_types%5B%5D=card",
        # percent-encoded brackets, as some clients send them
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "payment_method_types_no_longer_supported"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer nonsense", "Bearer sk_live_0123456789abcdef", "Basic Zm9v"]
)
def test_anything_but_a_test_key_is_401(
    sandbox_gateway: SandboxProcess, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{sandbox_gateway.url}/v1/events", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["request-id"].startswith("req_")


def test_a_live_key_through_the_sdk_is_an_authentication_error(
    sandbox_gateway: SandboxProcess,
) -> None:
    http = stripe.HTTPXClient(allow_sync_methods=True)
    client = stripe.StripeClient(
        "sk_live_" + "1" * 24, base_addresses={"api": sandbox_gateway.url}, http_client=http
    )
    try:
        with pytest.raises(stripe.AuthenticationError):
            client.v1.payment_intents.retrieve("pi_x")
    finally:
        http.close()


def test_an_unknown_intent_is_404_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.retrieve("pi_" + "0" * 24)
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


def test_responses_carry_request_id_and_echo_the_stripe_version(
    sandbox_gateway: SandboxProcess,
) -> None:
    response = httpx.post(
        f"{sandbox_gateway.url}/v1/payment_intents",
        headers={
            "Authorization": f"Bearer {sandbox_gateway.api_key}",
            "Stripe-Version": "2026-10-28.endive",
            "Content-Type": "application/json",
        },
        content=b'{"amount": 300, "currency": "usd", "allowed_payment_method_types": ["card"]}',
    )
    assert response.status_code == 200, response.text
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["stripe-version"] == "2026-10-28.endive"
    assert response.json()["amount"] == 300

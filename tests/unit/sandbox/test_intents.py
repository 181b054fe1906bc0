"""The PaymentIntent state machine, run on the engine directly: the statuses each
card leads to, the moves each status allows, one charge per successful confirm,
and the events each change emits."""

from __future__ import annotations

from typing import Any

import pytest

from orderdesk.sandbox import errors, intents, resources
from orderdesk.sandbox.clock import SandboxClock
from orderdesk.sandbox.config import SandboxConfig
from orderdesk.sandbox.engine import Engine
from orderdesk.sandbox.forms import Params
from orderdesk.sandbox.objects import Event
from orderdesk.sandbox.state import RequestContext, Store

CTX = RequestContext("req_test", "key_test")


@pytest.fixture
def published() -> list[Event]:
    return []


@pytest.fixture
def engine(published: list[Event]) -> Engine:
    return Engine(
        SandboxConfig(),
        store=Store(),
        clock=SandboxClock(start=1_800_000_000.0),
        publish=published.append,
    )


def _create(engine: Engine, **params: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "amount": "1000",
        "currency": "eur",
        "allowed_payment_method_types": ["card"],
    }
    return intents.create(engine, Params({**base, **params}), CTX)


def _confirm(engine: Engine, intent_id: str, **params: Any) -> dict[str, Any]:
    return intents.confirm(engine, intent_id, Params(params), CTX)


def test_created_without_a_method_it_requires_one(engine: Engine) -> None:
    assert _create(engine)["status"] == "requires_payment_method"


def test_created_with_a_method_it_requires_confirmation(engine: Engine) -> None:
    assert _create(engine, payment_method="pm_card_visa")["status"] == "requires_confirmation"


def test_a_good_confirm_succeeds_with_one_charge_and_its_events(
    engine: Engine, published: list[Event]
) -> None:
    pi = _create(engine, payment_method="pm_card_visa")
    paid = _confirm(engine, pi["id"])
    assert paid["status"] == "succeeded"
    assert paid["latest_charge"] in engine.store.charges
    assert [e.type for e in published] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    assert published[-1].data_object["status"] == "succeeded"
    assert published[0].data_object["status"] == "requires_confirmation"  # a snapshot
    assert (published[-1].request_id, published[-1].idempotency_key) == ("req_test", "key_test")


def test_a_second_confirm_is_unexpected_state_and_charges_nothing(engine: Engine) -> None:
    pi = _create(engine, payment_method="pm_card_visa", confirm="true")
    with pytest.raises(errors.StripeError) as caught:
        _confirm(engine, pi["id"])
    assert caught.value.code == "payment_intent_unexpected_state"
    assert caught.value.saved is True
    assert caught.value.payment_intent is not None
    assert caught.value.payment_intent["status"] == "succeeded"
    assert len(engine.store.charges) == 1


def test_a_decline_is_402_with_the_intent_back_at_requires_payment_method(
    engine: Engine, published: list[Event]
) -> None:
    pi = _create(engine)
    with pytest.raises(errors.StripeError) as caught:
        _confirm(engine, pi["id"], payment_method="pm_card_visa_chargeDeclinedInsufficientFunds")
    error = caught.value
    assert (error.status, error.type, error.decline_code) == (
        402,
        "card_error",
        "insufficient_funds",
    )
    assert error.payment_intent is not None
    assert error.payment_intent["status"] == "requires_payment_method"
    assert error.payment_intent["payment_method"] is None
    assert error.payment_intent["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert published[-1].type == "payment_intent.payment_failed"
    assert engine.store.charges == {}


def test_3ds_requires_action_until_authenticated(engine: Engine, published: list[Event]) -> None:
    pi = _create(engine, payment_method="pm_card_threeDSecure2Required", confirm="true")
    assert pi["status"] == "requires_action"
    assert pi["next_action"]["type"] == "use_stripe_sdk"
    assert published[-1].type == "payment_intent.requires_action"
    assert engine.store.charges == {}
    done = intents.authenticate(engine, pi["id"], "success", CTX)
    assert done["status"] == "succeeded"
    assert len(engine.store.charges) == 1


def test_failed_authentication_is_authentication_failure(engine: Engine) -> None:
    pi = _create(engine, payment_method="pm_card_authenticationRequired", confirm="true")
    failed = intents.authenticate(engine, pi["id"], "failure", CTX)
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_authenticating_an_intent_that_needs_no_action_is_refused(engine: Engine) -> None:
    pi = _create(engine)
    with pytest.raises(errors.StripeError) as caught:
        intents.authenticate(engine, pi["id"], "success", CTX)
    assert caught.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    "status_maker",
    [
        lambda e: _create(e),
        lambda e: _create(e, payment_method="pm_card_visa"),
        lambda e: _create(e, payment_method="pm_card_authenticationRequired", confirm="true"),
        lambda e: _create(
            e, payment_method="pm_card_visa", confirm="true", capture_method="manual"
        ),
    ],
)
def test_cancel_is_allowed_before_success(engine: Engine, status_maker: Any) -> None:
    pi = status_maker(engine)
    canceled = intents.cancel(engine, pi["id"], Params({"cancellation_reason": "duplicate"}), CTX)
    assert canceled["status"] == "canceled"
    assert canceled["cancellation_reason"] == "duplicate"


def test_cancel_after_success_is_refused(engine: Engine) -> None:
    pi = _create(engine, payment_method="pm_card_visa", confirm="true")
    with pytest.raises(errors.StripeError) as caught:
        intents.cancel(engine, pi["id"], Params({}), CTX)
    assert caught.value.code == "payment_intent_unexpected_state"


def test_manual_capture_waits_in_requires_capture(engine: Engine) -> None:
    pi = _create(engine, payment_method="pm_card_visa", confirm="true", capture_method="manual")
    assert (pi["status"], pi["amount_capturable"]) == ("requires_capture", 1000)
    done = intents.capture(engine, pi["id"], Params({}), CTX)
    assert (done["status"], done["amount_received"]) == ("succeeded", 1000)


def test_confirm_without_any_method_is_unexpected_state(engine: Engine) -> None:
    pi = _create(engine)
    with pytest.raises(errors.StripeError) as caught:
        _confirm(engine, pi["id"])
    assert caught.value.code == "payment_intent_unexpected_state"


def test_automatic_payment_methods_and_allowed_types_exclude_each_other(engine: Engine) -> None:
    with pytest.raises(errors.StripeError) as caught:
        _create(engine, automatic_payment_methods={"enabled": "true"})
    assert caught.value.saved is False


def test_a_refund_needs_a_successful_charge(engine: Engine) -> None:
    pi = _create(engine)
    with pytest.raises(errors.StripeError) as caught:
        resources.create_refund(engine, Params({"payment_intent": pi["id"]}), CTX)
    assert caught.value.param == "payment_intent"


def test_refunds_count_down_the_remainder(engine: Engine, published: list[Event]) -> None:
    pi = _create(engine, payment_method="pm_card_visa", confirm="true")
    resources.create_refund(engine, Params({"payment_intent": pi["id"], "amount": "400"}), CTX)
    with pytest.raises(errors.StripeError) as over:
        resources.create_refund(engine, Params({"payment_intent": pi["id"], "amount": "601"}), CTX)
    assert (over.value.code, over.value.param) == ("amount_too_large", "amount")
    rest = resources.create_refund(engine, Params({"payment_intent": pi["id"]}), CTX)
    assert rest["amount"] == 600
    with pytest.raises(errors.StripeError) as done:
        resources.create_refund(engine, Params({"payment_intent": pi["id"]}), CTX)
    assert done.value.code == "charge_already_refunded"
    assert [e.type for e in published][-2:] == ["refund.created", "charge.refunded"]

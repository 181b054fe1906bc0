"""Every SDK error becomes a port error that says what the caller may conclude: built
from real `stripe` exception objects carrying the bodies Stripe sends."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe

from orderdesk.payments.gateway import (
    GatewayMisconfigured,
    GatewayRejected,
    GatewayUnavailable,
    IntentStatus,
    OutcomeUnknown,
    PaymentDeclined,
)
from orderdesk.payments.stripe_gateway import map_error
from tests.unit.payments.stripe_shapes import payment_intent


def body_of(**error: Any) -> dict[str, Any]:
    return {"error": error}


def sdk_error(cls: type[stripe.StripeError], status: int, **error: Any) -> stripe.StripeError:
    """As `_api_requestor.specific_v1_api_error` builds them from an answer."""
    body = body_of(**error)
    raw = json.dumps(body)
    headers = {"request-id": "req_123"}
    if cls in (stripe.CardError, stripe.InvalidRequestError):
        return cls(
            error.get("message"), error.get("param"), error.get("code"), raw, status, body, headers
        )
    return cls(error.get("message"), raw, status, body, headers)


def test_a_card_error_is_a_decline_with_its_codes_and_the_intent_it_left() -> None:
    declined = payment_intent(
        status="requires_payment_method",
        last_payment_error={
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )
    error = sdk_error(
        stripe.CardError,
        402,
        type="card_error",
        code="card_declined",
        decline_code="insufficient_funds",
        message="Your card has insufficient funds.",
        payment_intent=declined,
    )

    mapped = map_error(error)

    assert isinstance(mapped, PaymentDeclined)
    assert mapped.decline.code == "card_declined"
    assert mapped.decline.decline_code == "insufficient_funds"
    assert mapped.decline.message == "Your card has insufficient funds."
    assert mapped.intent is not None
    assert mapped.intent.id == declined["id"]
    assert mapped.intent.status is IntentStatus.REQUIRES_PAYMENT_METHOD
    assert mapped.intent.last_error == mapped.decline


def test_a_card_error_without_an_embedded_intent_is_still_a_decline() -> None:
    error = sdk_error(stripe.CardError, 402, type="card_error", code="expired_card", message="x")

    mapped = map_error(error)

    assert isinstance(mapped, PaymentDeclined)
    assert mapped.decline.code == "expired_card"
    assert mapped.decline.decline_code is None
    assert mapped.intent is None


def test_an_unexpected_state_is_a_rejection_carrying_the_intent() -> None:
    intent = payment_intent(status="succeeded")
    error = sdk_error(
        stripe.InvalidRequestError,
        400,
        type="invalid_request_error",
        code="payment_intent_unexpected_state",
        message="This PaymentIntent's status is succeeded.",
        payment_intent=intent,
    )

    mapped = map_error(error)

    assert isinstance(mapped, GatewayRejected)
    assert mapped.code == "payment_intent_unexpected_state"
    assert mapped.status == 400
    assert mapped.intent is not None
    assert mapped.intent.status is IntentStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("cls", "status", "error", "code", "param"),
    [
        pytest.param(
            stripe.InvalidRequestError,
            404,
            {"type": "invalid_request_error", "code": "resource_missing", "param": "intent"},
            "resource_missing",
            "intent",
            id="resource-missing",
        ),
        pytest.param(
            stripe.InvalidRequestError,
            400,
            {"type": "invalid_request_error", "code": "charge_already_refunded"},
            "charge_already_refunded",
            None,
            id="already-refunded",
        ),
        pytest.param(
            stripe.IdempotencyError,
            400,
            {"type": "idempotency_error"},
            "idempotency_error",
            None,
            id="idempotency",
        ),
    ],
)
def test_invalid_requests_are_rejections_with_their_code_and_param(
    cls: type[stripe.StripeError],
    status: int,
    error: dict[str, Any],
    code: str,
    param: str | None,
) -> None:
    mapped = map_error(sdk_error(cls, status, message="refused", **error))

    assert isinstance(mapped, GatewayRejected)
    assert (mapped.code, mapped.param, mapped.status) == (code, param, status)
    assert mapped.message == "refused"
    assert mapped.intent is None


def test_a_rate_limit_means_nothing_ran_and_reads_retry_after() -> None:
    error = stripe.RateLimitError(
        "Too many requests", "{}", 429, body_of(type="rate_limit_error"), {"Retry-After": "3"}
    )

    mapped = map_error(error)

    assert isinstance(mapped, GatewayUnavailable)
    assert mapped.retry_after == 3.0


def test_a_rate_limit_without_retry_after_still_gives_a_delay() -> None:
    mapped = map_error(sdk_error(stripe.RateLimitError, 429, type="rate_limit_error", message="x"))

    assert isinstance(mapped, GatewayUnavailable)
    assert mapped.retry_after > 0


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        pytest.param(stripe.AuthenticationError, 401, id="401"),
        pytest.param(stripe.PermissionError, 403, id="403"),
    ],
)
def test_refused_credentials_are_a_configuration_error_never_an_unknown_outcome(
    cls: type[stripe.StripeError], status: int
) -> None:
    mapped = map_error(sdk_error(cls, status, type="invalid_request_error", message="bad key"))

    assert isinstance(mapped, GatewayMisconfigured)
    assert not isinstance(mapped, OutcomeUnknown)
    assert mapped.status == status


def test_a_connection_error_or_timeout_is_an_unknown_outcome() -> None:
    error = stripe.APIConnectionError("A ReadTimeout was raised", should_retry=True)

    assert isinstance(map_error(error), OutcomeUnknown)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_after_the_sdks_retries_is_an_unknown_outcome(status: int) -> None:
    mapped = map_error(sdk_error(stripe.APIError, status, type="api_error", message="boom"))

    assert isinstance(mapped, OutcomeUnknown)
    assert str(status) in mapped.message


def test_another_4xx_the_sdk_calls_an_api_error_is_a_rejection() -> None:
    mapped = map_error(sdk_error(stripe.APIError, 424, type="api_error", code="x", message="dep"))

    assert isinstance(mapped, GatewayRejected)
    assert mapped.status == 424


def test_a_conflict_on_a_key_still_running_is_an_unknown_outcome_not_a_refusal() -> None:
    # Stripe's 409 for an idempotency key whose first request has not finished: it
    # may yet succeed, so a refund or confirm must be asked about again, not failed.
    error = sdk_error(stripe.APIError, 409, type="idempotency_error", message="in progress")

    assert isinstance(map_error(error), OutcomeUnknown)

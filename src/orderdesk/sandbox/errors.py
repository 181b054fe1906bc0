"""Stripe's error shape, and the few errors the sandbox answers with.

The SDK picks its exception from the status alone, except on 400/404 where
`type: idempotency_error` makes an `IdempotencyError` (stripe 16.1,
`_api_requestor.specific_v1_api_error`). So the status and `type` here are the
contract; messages follow the ones Stripe is seen answering in public reports.

`saved` tells the idempotency layer whether the error happened after execution
began (replayed under the key) or while the parameters were still being read
(not saved: Stripe lets a corrected retry reuse the key).
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        payment_intent: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        saved: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.payment_intent = payment_intent
        self.extra = extra or {}
        self.saved = saved

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        for name, value in (
            ("code", self.code),
            ("decline_code", self.decline_code),
            ("param", self.param),
            ("payment_intent", self.payment_intent),
        ):
            if value is not None:
                error[name] = value
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        return {"error": error}


def invalid_api_key(shown: str) -> StripeError:
    return StripeError(401, f"Invalid API Key provided: {shown}", saved=False)


def missing_api_key() -> StripeError:
    return StripeError(
        401,
        "You did not provide an API key. You need to provide your API key in the "
        "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        saved=False,
    )


def parameter_missing(param: str) -> StripeError:
    return StripeError(
        400,
        f"Missing required param: {param}.",
        code="parameter_missing",
        param=param,
        saved=False,
    )


def parameter_invalid(param: str, message: str, *, code: str = "parameter_invalid") -> StripeError:
    return StripeError(400, message, code=code, param=param, saved=False)


def parameter_unknown(param: str) -> StripeError:
    return StripeError(
        400,
        f"Received unknown parameter: {param}",
        code="parameter_unknown",
        param=param,
        saved=False,
    )


def resource_missing(kind: str, object_id: str, *, param: str = "id") -> StripeError:
    return StripeError(
        404,
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
        saved=False,
    )


def unexpected_state(message: str, payment_intent: dict[str, Any]) -> StripeError:
    return StripeError(
        400,
        message,
        code="payment_intent_unexpected_state",
        payment_intent=payment_intent,
    )


def not_found_route(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}).",
        saved=False,
    )


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type_="idempotency_error",
        saved=False,
    )


def idempotency_key_in_use(key: str) -> StripeError:
    return StripeError(
        409,
        "There is currently another in-progress request using this Idempotent Key (that "
        "probably means you submitted twice, and the other request is still going through): "
        f"{key}. Please try again later.",
        type_="idempotency_error",
        code="idempotency_key_in_use",
        saved=False,
    )


def idempotency_key_too_long() -> StripeError:
    return StripeError(
        400,
        "Invalid idempotency key: keys must be at most 255 characters long.",
        param="Idempotency-Key",
        saved=False,
    )


def injected(status: int) -> StripeError:
    """The body of a fault-injected failure, in the type Stripe uses for that status."""
    if status == 429:
        return StripeError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            type_="invalid_request_error",
            code="rate_limit",
        )
    if status >= 500:
        return StripeError(
            status,
            "An unknown error occurred (injected by the sandbox gateway).",
            type_="api_error",
        )
    return StripeError(status, "Injected failure (sandbox gateway).")

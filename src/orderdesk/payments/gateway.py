"""The payment gateway port: what the payments domain asks of a card processor, in
plain types. Amounts are integers in the currency's minor unit, currencies are
lowercase ISO codes. `stripe_gateway.py` implements it over Stripe's API; tests and
the sandbox implement it however they like, so nothing here names the SDK.

Errors tell the caller what it may conclude:

- `PaymentDeclined`, `GatewayRejected`: the gateway answered no; nothing changed
  that the caller did not ask for (a decline may leave the intent in a new state,
  which is attached).
- `OutcomeUnknown`: the call may or may not have taken effect. Never a failure:
  settle it by retrieving the object (or by its webhook).
- `GatewayUnavailable`: nothing was executed; try again after `retry_after`.
- `GatewayMisconfigured`: our credentials are wrong; every call will fail alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class IntentStatus(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class RefundStatus(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Decline:
    """Why an attempt failed: `code` such as `card_declined`, and for card declines
    the issuer's `decline_code` (`insufficient_funds`, …)."""

    code: str
    decline_code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    status: IntentStatus
    amount: int
    currency: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    client_secret: str | None = None
    latest_charge: str | None = None
    last_error: Decline | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    status: RefundStatus
    amount: int
    currency: str
    payment_intent: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A webhook or listed event. `intent` is the snapshot for `payment_intent.*`,
    `refund` for `refund.*` and, for `charge.refunded`, the charge's newest refund
    when the payload lists its refunds; any other type has both None. A snapshot is
    the object at event time, not now: compare, and retrieve when in doubt."""

    id: str
    type: str
    created: int
    intent: Intent | None = None
    refund: Refund | None = None


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    url: str
    secret: str | None = field(default=None, repr=False)  # only returned on create


# --- errors ------------------------------------------------------------------------------


class GatewayError(Exception):
    """Base of everything a `PaymentGateway` raises."""


class PaymentDeclined(GatewayError):
    """The card was declined (Stripe's 402). `intent` is the intent as the decline left
    it (back to `requires_payment_method`, `last_error` set) when the answer had it."""

    def __init__(self, decline: Decline, intent: Intent | None = None) -> None:
        super().__init__(decline.message or decline.code)
        self.decline = decline
        self.intent = intent


class GatewayRejected(GatewayError):
    """The request was refused as invalid for the object's state or for its parameters
    (`payment_intent_unexpected_state`, `charge_already_refunded`, `idempotency_error`,
    `resource_missing`, …). `intent` is set when the answer embedded one."""

    def __init__(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        intent: Intent | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.intent = intent
        self.status = status


class OutcomeUnknown(GatewayError):
    """The call may have taken effect: a timeout, a dropped connection, a 5xx after the
    SDK's own retries, or an answer this adapter could not read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GatewayUnavailable(GatewayError):
    """Nothing was executed: the breaker is open, or the gateway rate-limited us."""

    def __init__(self, retry_after: float, message: str = "payment gateway unavailable") -> None:
        super().__init__(f"{message}; retry after {retry_after:.1f} s")
        self.retry_after = retry_after


class GatewayMisconfigured(GatewayError):
    """The gateway refused our credentials (401/403): an operator must fix the key."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidSignature(GatewayError):
    """A webhook that must not be trusted: `reason` says why, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedEvent(GatewayError):
    """A correctly signed webhook body that is not a readable event."""


# --- the port ----------------------------------------------------------------------------


class PaymentGateway(Protocol):
    @property
    def longest_call(self) -> float:
        """Seconds one call can take, its retries included: after a lost answer,
        how long the call may still be running at the gateway."""
        ...

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Intent:
        """A new intent for cards only; no money moves."""
        ...

    async def confirm_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> Intent:
        """Charges the payment method: `PaymentDeclined` on a decline."""
        ...

    async def retrieve_intent(self, intent_id: str) -> Intent:
        """The intent as the gateway has it now; never held back by the breaker."""
        ...

    async def cancel_intent(
        self, intent_id: str, *, idempotency_key: str, reason: str = "abandoned"
    ) -> Intent: ...

    async def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> Refund: ...

    async def retrieve_refund(self, refund_id: str) -> Refund: ...

    async def list_events(
        self, *, created_after: int | None, types: Sequence[str], limit: int = 100
    ) -> list[GatewayEvent]:
        """Every event of `types` created after `created_after`, oldest first, read
        `limit` per page: for backfilling webhooks that never arrived."""
        ...

    async def create_webhook_endpoint(
        self, url: str, *, events: Sequence[str]
    ) -> WebhookEndpoint: ...

    def parse_webhook(self, body: bytes, signature_header: str | None) -> GatewayEvent:
        """Verifies the raw body against the signature header (`InvalidSignature`),
        then reads it (`MalformedEvent`)."""
        ...

    async def close(self) -> None: ...

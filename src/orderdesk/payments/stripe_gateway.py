"""The payment gateway over Stripe's API, through the official SDK.

Decisions, with the measurements behind them in the payments notes (§1):

- Retries are the SDK's alone (`max_network_retries`, always passed: its default is
  none): it retries timeouts, connection errors, 409 and 5xx with the same
  `Idempotency-Key`. A layer on top would multiply the attempts.
- Every POST carries the caller's idempotency key, so a retry by the caller (or of a
  whole request) is the same request to Stripe, never a second charge.
- Intents are created with `allowed_payment_method_types=["card"]`:
  `payment_method_types` is refused on this API version, and automatic payment
  methods would make a server-side confirm demand a `return_url`.
- The breaker holds back only calls that start new work; retrieving, cancelling,
  listing events and webhooks always go through, so reconciliation works during an
  outage.
- No SDK type leaves this module: answers become the port's values through
  `.to_dict()` (a `StripeObject` is no dict in v16), errors the port's errors.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httpx
import stripe
import structlog
from stripe.params import (
    EventListParams,
    PaymentIntentCancelParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
    WebhookEndpointCreateParams,
)

from orderdesk.core.settings import STRIPE_API_BASE, STRIPE_API_VERSION, Settings
from orderdesk.payments import signatures
from orderdesk.payments.breaker import CircuitBreaker
from orderdesk.payments.gateway import (
    Decline,
    GatewayError,
    GatewayEvent,
    GatewayMisconfigured,
    GatewayRejected,
    GatewayUnavailable,
    Intent,
    MalformedEvent,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentGateway,
    Refund,
    WebhookEndpoint,
)
from orderdesk.payments.stripe_objects import (
    endpoint_from,
    event_from,
    intent_from,
    refund_from,
)

T = TypeVar("T")

log = structlog.get_logger("orderdesk.payments")

# The sandbox accepts any test key; a URL without a key means it.
SANDBOX_API_KEY = "sk_test_orderdesk_sandbox"
# Without a Retry-After, a rate-limited caller is told to wait this long.
RATE_LIMIT_RETRY_AFTER_SECONDS = 1.0
# list_events reads at most this many pages; more means the window is too wide.
MAX_EVENT_PAGES = 100


@dataclass(frozen=True, slots=True)
class StripeConfig:
    api_key: str = field(repr=False)
    base_url: str = STRIPE_API_BASE
    api_version: str = STRIPE_API_VERSION
    timeout_seconds: float = 8.0
    max_retries: int = 2
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    breaker_failures: int = 5
    breaker_open_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings, *, base_url: str | None = None) -> StripeConfig:
        """`base_url` overrides `ORDERDESK_PAYMENT_GATEWAY_URL`: for the in-process
        sandbox, which has an address only inside the process."""
        base = (base_url or settings.payment_gateway_url or STRIPE_API_BASE).rstrip("/")
        key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
        if key is None:
            if base == STRIPE_API_BASE:
                raise ValueError("ORDERDESK_STRIPE_API_KEY is needed to reach Stripe itself")
            key = SANDBOX_API_KEY
        return cls(
            api_key=key,
            base_url=base,
            api_version=settings.stripe_api_version,
            timeout_seconds=settings.payment_gateway_timeout_seconds,
            max_retries=settings.payment_gateway_max_retries,
            webhook_secrets=tuple(s.get_secret_value() for s in settings.stripe_webhook_secrets),
            breaker_failures=settings.payment_breaker_failures,
            breaker_open_seconds=settings.payment_breaker_open_seconds,
        )


def use_http_client(sdk_http: stripe.HTTPXClient, client: httpx.AsyncClient) -> None:
    """Sends the SDK's async requests through `client` (its transport, limits and
    instrumentation: an `httpx.ASGITransport` reaches an app in this process).

    The SDK builds its own `httpx.AsyncClient` and takes none, so this replaces its
    private `_client_async` attribute (stripe 16.1; checked by the adapter's tests).
    The per-request timeout still comes from the `HTTPXClient`. The replaced client
    has opened no connection, so dropping it leaks nothing; `client` stays its
    owner's to close.
    """
    if not hasattr(sdk_http, "_client_async"):
        raise RuntimeError("stripe.HTTPXClient no longer has _client_async; revisit the swap")
    sdk_http._client_async = client


class StripeGateway:
    def __init__(
        self,
        config: StripeConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = config
        self._wall_clock = wall_clock
        self._http = stripe.HTTPXClient(timeout=config.timeout_seconds)
        self._owns_http = http_client is None
        if http_client is not None:
            use_http_client(self._http, http_client)
        self._client = stripe.StripeClient(
            config.api_key,
            base_addresses={"api": config.base_url},
            stripe_version=config.api_version,
            http_client=self._http,
            max_network_retries=config.max_retries,
        )
        self.breaker = CircuitBreaker(
            failures=config.breaker_failures,
            open_seconds=config.breaker_open_seconds,
            monotonic=monotonic,
        )

    # --- intents -------------------------------------------------------------------------

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Intent:
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": currency,
            "metadata": dict(metadata),
            "allowed_payment_method_types": ["card"],
        }
        intents = self._client.v1.payment_intents
        answer = await self._new_work(
            lambda: intents.create_async(params, options={"idempotency_key": idempotency_key})
        )
        return _read(intent_from, answer)

    async def confirm_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> Intent:
        params: PaymentIntentConfirmParams = {"payment_method": payment_method}
        intents = self._client.v1.payment_intents
        answer = await self._new_work(
            lambda: intents.confirm_async(
                intent_id, params, options={"idempotency_key": idempotency_key}
            )
        )
        return _read(intent_from, answer)

    async def retrieve_intent(self, intent_id: str) -> Intent:
        answer = await _answer(self._client.v1.payment_intents.retrieve_async(intent_id))
        return _read(intent_from, answer)

    async def cancel_intent(
        self, intent_id: str, *, idempotency_key: str, reason: str = "abandoned"
    ) -> Intent:
        params: PaymentIntentCancelParams = {"cancellation_reason": reason}
        answer = await _answer(
            self._client.v1.payment_intents.cancel_async(
                intent_id, params, options={"idempotency_key": idempotency_key}
            )
        )
        return _read(intent_from, answer)

    # --- refunds -------------------------------------------------------------------------

    async def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> Refund:
        params: RefundCreateParams = {
            "payment_intent": payment_intent,
            "amount": amount,
            "metadata": dict(metadata),
        }
        refunds = self._client.v1.refunds
        answer = await self._new_work(
            lambda: refunds.create_async(params, options={"idempotency_key": idempotency_key})
        )
        return _read(refund_from, answer)

    async def retrieve_refund(self, refund_id: str) -> Refund:
        answer = await _answer(self._client.v1.refunds.retrieve_async(refund_id))
        return _read(refund_from, answer)

    # --- events and webhooks -------------------------------------------------------------

    async def list_events(
        self, *, created_after: int | None, types: Sequence[str], limit: int = 100
    ) -> list[GatewayEvent]:
        params: EventListParams = {"limit": max(1, min(limit, 100))}
        if types:
            params["types"] = list(types)
        if created_after is not None:
            params["created"] = {"gt": created_after}
        payloads: list[dict[str, Any]] = []
        for _ in range(MAX_EVENT_PAGES):
            page = await _answer(self._client.v1.events.list_async(params))
            data = page.get("data") or []
            payloads.extend(data)
            if not page.get("has_more") or not data:
                break
            params["starting_after"] = data[-1]["id"]
        else:
            # Stripe lists newest first: stopping here would drop the oldest events,
            # and a caller advancing its cursor past them would never see them.
            raise GatewayError(f"more than {MAX_EVENT_PAGES} pages of events; narrow the window")
        events = [_read(event_from, payload) for payload in payloads]
        return sorted(events, key=lambda event: (event.created, event.id))

    async def create_webhook_endpoint(self, url: str, *, events: Sequence[str]) -> WebhookEndpoint:
        params = cast(
            WebhookEndpointCreateParams,
            {"url": url, "enabled_events": list(events), "api_version": self._config.api_version},
        )
        # A key derived from what is registered: setting up twice within Stripe's 24 h
        # replays the first endpoint instead of adding a second one.
        digest = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:32]
        answer = self._client.v1.webhook_endpoints.create_async(
            params, options={"idempotency_key": f"orderdesk:webhook_endpoint:{digest}"}
        )
        return _read(endpoint_from, await _answer(answer))

    def parse_webhook(self, body: bytes, signature_header: str | None) -> GatewayEvent:
        signatures.verify(
            body, signature_header, self._config.webhook_secrets, now=self._wall_clock()
        )
        try:
            return event_from(_json_object(body))
        except (ValueError, KeyError, TypeError) as problem:
            raise MalformedEvent(f"not a readable event: {problem!r}") from None

    @property
    def longest_call(self) -> float:
        # Every attempt's timeout, plus the SDK's backoff between them (at most 5 s).
        retries = self._config.max_retries
        return self._config.timeout_seconds * (retries + 1) + 5.0 * retries

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _new_work(self, call: Callable[[], Awaitable[stripe.StripeObject]]) -> dict[str, Any]:
        """A call that starts new work, held back while the breaker is open; `call`
        makes the request only once the breaker lets it through."""
        return await self.breaker.call(lambda: _answer(call()))


async def _answer(call: Awaitable[stripe.StripeObject]) -> dict[str, Any]:
    """The answer as plain data, or the port's error for the SDK's."""
    try:
        answer = await call
    except stripe.StripeError as error:
        mapped = map_error(error)
        if isinstance(mapped, GatewayMisconfigured):
            # Every call fails alike until an operator fixes the key: say so loudly.
            log.error("payment_gateway_misconfigured", status=mapped.status, message=str(mapped))
        raise mapped from error
    return answer.to_dict()


def _read(convert: Callable[[dict[str, Any]], T], answer: dict[str, Any]) -> T:
    """An answer we cannot read may still record an effect: the caller retrieves."""
    try:
        return convert(answer)
    except (ValueError, KeyError, TypeError) as problem:
        kind = answer.get("object", "object")
        raise OutcomeUnknown(f"unreadable {kind} {answer.get('id')}: {problem!r}") from None


def _conforms(gateway: StripeGateway) -> PaymentGateway:
    return gateway  # mypy checks here that the adapter implements the port


def _json_object(body: bytes) -> dict[str, Any]:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("the body is not a JSON object")
    return value


def map_error(error: stripe.StripeError) -> GatewayError:
    """The port's error for an SDK error (the SDK picks its class by HTTP status)."""
    body = _error_body(error)
    message = str(body.get("message") or error.user_message or type(error).__name__)
    status = error.http_status
    if isinstance(error, stripe.CardError):
        decline = _decline(body, code=error.code, message=message)
        return PaymentDeclined(decline, _embedded_intent(body))
    if isinstance(error, stripe.RateLimitError):
        return GatewayUnavailable(_retry_after(error), "payment gateway rate limit")
    if isinstance(error, stripe.IdempotencyError | stripe.InvalidRequestError):
        code = error.code or body.get("code") or body.get("type")
        return GatewayRejected(
            code, message, body.get("param"), _embedded_intent(body), status or 400
        )
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return GatewayMisconfigured(
            f"the payment gateway refused our credentials: {message}", status=status or 401
        )
    if isinstance(error, stripe.APIConnectionError):
        return OutcomeUnknown(f"no answer from the payment gateway: {message}")
    if status == 409:
        # The same idempotency key is still running there (the SDK already retried
        # it): its outcome is not known yet, and it is not a refusal.
        return OutcomeUnknown(f"the payment gateway is still running this request: {message}")
    if status is not None and 400 <= status < 500:
        return GatewayRejected(body.get("code"), message, body.get("param"), None, status)
    # APIError (5xx after the SDK's retries) and anything else: it may have happened.
    return OutcomeUnknown(f"payment gateway error {status}: {message}")


def _error_body(error: stripe.StripeError) -> dict[str, Any]:
    json_body = error.json_body
    if isinstance(json_body, dict) and isinstance(json_body.get("error"), dict):
        return cast(dict[str, Any], json_body["error"])
    return {}


def _decline(body: Mapping[str, Any], *, code: str | None, message: str) -> Decline:
    return Decline(
        code=str(code or body.get("code") or "card_declined"),
        decline_code=body.get("decline_code"),
        message=message,
    )


def _embedded_intent(body: Mapping[str, Any]) -> Intent | None:
    embedded = body.get("payment_intent")
    if not isinstance(embedded, dict):
        return None
    try:
        return intent_from(embedded)
    except (ValueError, KeyError, TypeError):
        return None  # the error itself is what matters; the caller can retrieve


def _retry_after(error: stripe.StripeError) -> float:
    headers = {name.lower(): value for name, value in (error.headers or {}).items()}
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return RATE_LIMIT_RETRY_AFTER_SECONDS

"""The sandbox's records and their Stripe-shaped JSON.

Records are plain mutable dataclasses owned by the store; `render_*` turns one into
the dict Stripe would answer with, fields holding ids unless the caller passes the
expanded object. Events keep the rendering of their object at the moment they
were made ("the contents of data never change").
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

_ALPHABET = string.digits + string.ascii_letters
_ID_SPACE = len(_ALPHABET) ** 24


def new_id(prefix: str) -> str:
    """`prefix` + 24 base-62 characters, like `pi_3Orp…`."""
    number = secrets.randbelow(_ID_SPACE)
    chars = []
    for _ in range(24):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(chars)}"


@dataclass(slots=True)
class PaymentIntent:
    id: str
    amount: int
    currency: str
    created: int
    capture_method: str
    client_secret: str
    status: str = "requires_payment_method"
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    payment_method: str | None = None
    latest_charge: str | None = None
    last_payment_error: dict[str, Any] | None = None
    next_action: dict[str, Any] | None = None
    cancellation_reason: str | None = None
    canceled_at: int | None = None
    amount_capturable: int = 0
    amount_received: int = 0
    automatic_payment_methods: dict[str, Any] | None = None
    allowed_payment_method_types: list[str] | None = None
    return_url: str | None = None
    refund_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Charge:
    id: str
    amount: int
    currency: str
    created: int
    payment_intent: str
    payment_method: str
    metadata: dict[str, str]
    captured: bool
    refund_fails: bool = False
    amount_captured: int = 0
    amount_refunded: int = 0
    refund_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Refund:
    id: str
    amount: int
    currency: str
    created: int
    charge: str
    payment_intent: str
    status: str
    reason: str | None = None
    failure_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class WebhookEndpoint:
    id: str
    url: str
    secret: str
    enabled_events: list[str]
    api_version: str
    created: int
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass(slots=True)
class Event:
    id: str
    type: str
    created: int
    data_object: dict[str, Any]
    api_version: str
    request_id: str | None
    idempotency_key: str | None
    previous_attributes: dict[str, Any] | None = None
    pending_webhooks: int = 0


def render_payment_method(pm_id: str, brand: str, last4: str, created: int) -> dict[str, Any]:
    return {
        "id": pm_id,
        "object": "payment_method",
        "type": "card",
        "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034},
        "created": created,
        "livemode": False,
    }


def render_intent(
    pi: PaymentIntent, *, latest_charge: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": pi.id,
        "object": "payment_intent",
        "amount": pi.amount,
        "amount_capturable": pi.amount_capturable,
        "amount_received": pi.amount_received,
        "automatic_payment_methods": pi.automatic_payment_methods,
        "canceled_at": pi.canceled_at,
        "cancellation_reason": pi.cancellation_reason,
        "capture_method": pi.capture_method,
        "client_secret": pi.client_secret,
        "confirmation_method": "automatic",
        "created": pi.created,
        "currency": pi.currency,
        "description": pi.description,
        "last_payment_error": pi.last_payment_error,
        "latest_charge": latest_charge if latest_charge is not None else pi.latest_charge,
        "livemode": False,
        "metadata": dict(pi.metadata),
        "next_action": pi.next_action,
        "payment_method": pi.payment_method,
        "payment_method_types": list(pi.allowed_payment_method_types or ["card"]),
        "return_url": pi.return_url,
        "status": pi.status,
    }


def render_refund(
    refund: Refund,
    *,
    charge: dict[str, Any] | None = None,
    payment_intent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "charge": charge if charge is not None else refund.charge,
        "created": refund.created,
        "currency": refund.currency,
        "failure_reason": refund.failure_reason,
        "metadata": dict(refund.metadata),
        "payment_intent": payment_intent if payment_intent is not None else refund.payment_intent,
        "reason": refund.reason,
        "status": refund.status,
    }


def render_charge(charge: Charge, refunds: list[Refund]) -> dict[str, Any]:
    return {
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": charge.amount_captured,
        "amount_refunded": charge.amount_refunded,
        "captured": charge.captured,
        "created": charge.created,
        "currency": charge.currency,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": dict(charge.metadata),
        "paid": True,
        "payment_intent": charge.payment_intent,
        "payment_method": charge.payment_method,
        "refunded": charge.amount_refunded >= charge.amount,
        "refunds": render_list(
            [render_refund(r) for r in reversed(refunds)],
            url=f"/v1/charges/{charge.id}/refunds",
            has_more=False,
        ),
        "status": "succeeded",
    }


def render_endpoint(endpoint: WebhookEndpoint, *, with_secret: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "api_version": endpoint.api_version,
        "created": endpoint.created,
        "description": endpoint.description,
        "enabled_events": list(endpoint.enabled_events),
        "livemode": False,
        "metadata": dict(endpoint.metadata),
        "status": "enabled",
        "url": endpoint.url,
    }
    if with_secret:
        body["secret"] = endpoint.secret
    return body


def render_event(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"object": event.data_object}
    if event.previous_attributes is not None:
        data["previous_attributes"] = event.previous_attributes
    return {
        "id": event.id,
        "object": "event",
        "api_version": event.api_version,
        "created": event.created,
        "data": data,
        "livemode": False,
        "pending_webhooks": event.pending_webhooks,
        "request": {"id": event.request_id, "idempotency_key": event.idempotency_key},
        "type": event.type,
    }


def render_list(data: list[dict[str, Any]], *, url: str, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}

"""Stripe objects as its API sends them (the fields orderdesk reads, and a few it
does not, as real answers have), for the conversion, mapping and adapter tests."""

from __future__ import annotations

from typing import Any

CREATED = 1_760_000_000


def payment_intent(**overrides: Any) -> dict[str, Any]:
    intent_id = overrides.pop("id", "pi_3QaBcDeFgHiJkLmN0pQrStUv")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": 2599,
        "amount_capturable": 0,
        "amount_received": 0,
        "currency": "eur",
        "status": "requires_payment_method",
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_xYz123",
        "created": CREATED,
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {"order_id": "o_1", "attempt": "1"},
        "next_action": None,
        "payment_method": None,
        "payment_method_types": ["card"],
        "cancellation_reason": None,
        "canceled_at": None,
        **overrides,
    }


def refund(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "re_3QaBcDeFgHiJkLmN0pQrStUv",
        "object": "refund",
        "amount": 500,
        "charge": "ch_3QaBcDeFgHiJkLmN0pQrStUv",
        "payment_intent": "pi_3QaBcDeFgHiJkLmN0pQrStUv",
        "currency": "eur",
        "status": "succeeded",
        "reason": None,
        "failure_reason": None,
        "metadata": {"refund_id": "r_1"},
        "created": CREATED,
        **overrides,
    }


def event(kind: str, obj: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "id": "evt_3QaBcDeFgHiJkLmN0pQrStUv",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": CREATED,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_abc", "idempotency_key": "orderdesk:o_1:pay1:confirm"},
        "type": kind,
        **overrides,
    }


def card_error(intent: dict[str, Any] | None, decline_code: str = "generic_decline") -> Any:
    """A 402 body as Stripe sends it for a declined confirm."""
    return {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": "Your card was declined.",
            "param": None,
            "payment_intent": intent,
            "doc_url": "https://docs.stripe.com/error-codes/card-declined",
        }
    }

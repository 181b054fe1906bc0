"""Stripe's JSON objects (as plain dicts: an answer's `.to_dict()`, or a webhook
body) read into the port's values. A missing required field or an unknown status
raises `KeyError`/`ValueError`; callers decide what that means for them.

Fields that may come expanded (`latest_charge`, a refund's `payment_intent`) are
read as the id either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orderdesk.payments.gateway import (
    Decline,
    GatewayEvent,
    Intent,
    IntentStatus,
    Refund,
    RefundStatus,
    WebhookEndpoint,
)


def intent_from(data: Mapping[str, Any]) -> Intent:
    error = data.get("last_payment_error")
    return Intent(
        id=str(data["id"]),
        status=IntentStatus(data["status"]),
        amount=int(data["amount"]),
        currency=str(data["currency"]).lower(),
        metadata=_metadata(data.get("metadata")),
        client_secret=data.get("client_secret"),
        latest_charge=_id_of(data.get("latest_charge")),
        last_error=decline_from(error) if isinstance(error, Mapping) else None,
    )


def decline_from(error: Mapping[str, Any]) -> Decline:
    """From a `last_payment_error` or an error body: `code` falls back to the type."""
    return Decline(
        code=str(error.get("code") or error.get("type") or "unknown"),
        decline_code=error.get("decline_code"),
        message=str(error.get("message") or ""),
    )


def refund_from(data: Mapping[str, Any]) -> Refund:
    return Refund(
        id=str(data["id"]),
        status=RefundStatus(data["status"]),
        amount=int(data["amount"]),
        currency=str(data["currency"]).lower(),
        payment_intent=_id_of(data.get("payment_intent")),
        metadata=_metadata(data.get("metadata")),
        failure_reason=data.get("failure_reason"),
    )


def endpoint_from(data: Mapping[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(id=str(data["id"]), url=str(data["url"]), secret=data.get("secret"))


def event_from(data: Mapping[str, Any]) -> GatewayEvent:
    """`payment_intent.*` carries the intent, `refund.*` the refund, and
    `charge.refunded` the charge's newest refund when its payload lists them (API
    versions since 2022-11-15 leave `refunds` out unless expanded: then None, and
    the `refund.*` events, sent for every refund since 2024-10-28, carry it).
    Other types are read with neither."""
    kind = str(data["type"])
    obj = data["data"]["object"]
    intent = refund = None
    if kind.startswith("payment_intent."):
        intent = intent_from(obj)
    elif kind.startswith("refund."):
        refund = refund_from(obj)
    elif kind == "charge.refunded":
        refund = _newest_refund(obj)
    return GatewayEvent(
        id=str(data["id"]), type=kind, created=int(data["created"]), intent=intent, refund=refund
    )


def _newest_refund(charge: Mapping[str, Any]) -> Refund | None:
    listed = charge.get("refunds")
    refunds = listed.get("data") if isinstance(listed, Mapping) else None
    if not refunds:
        return None
    newest: Mapping[str, Any] = max(refunds, key=lambda r: int(r.get("created") or 0))
    if newest.get("payment_intent") is None and charge.get("payment_intent") is not None:
        newest = {**newest, "payment_intent": charge["payment_intent"]}
    return refund_from(newest)


def _id_of(value: object) -> str | None:
    """An id, whether the field holds the id or the expanded object."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return str(value["id"])
    return str(value)


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): str(item) for key, item in value.items()}

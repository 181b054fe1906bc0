"""Refunds, charges, events and webhook endpoints.

Refunds follow Stripe's arithmetic: `amount_refunded` on the charge counts every
refund that has not failed, a refund defaults to what is left, a charge with
nothing left answers `charge_already_refunded`, and more than what is left
answers `amount_too_large` with `param: amount` (the message is the one Stripe is
seen answering; the code is Stripe's documented `amount_too_large`). A refund of
a `pm_card_refundFail` charge starts `pending` and fails a moment later, giving
the money back to the charge and sending `refund.updated` and `refund.failed`.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from orderdesk.sandbox import errors
from orderdesk.sandbox.engine import Engine
from orderdesk.sandbox.forms import Params, apply_metadata
from orderdesk.sandbox.objects import (
    Charge,
    Refund,
    WebhookEndpoint,
    new_id,
    render_endpoint,
    render_event,
    render_list,
    render_refund,
)
from orderdesk.sandbox.state import NO_REQUEST, RequestContext

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
REFUND_FAILS_AFTER_SECONDS = 0.2
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def _money(amount: int, currency: str) -> str:
    symbol = _SYMBOLS.get(currency)
    text = f"{amount / 100:.2f}"
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


def _refundable_charge(engine: Engine, params: Params) -> Charge:
    pi_id = params.string("payment_intent")
    charge_id = params.string("charge")
    if pi_id is None and charge_id is None:
        raise errors.StripeError(
            400,
            "One of the following params should be provided for this request: payment_intent "
            "or charge.",
            code="parameter_missing",
            saved=False,
        )
    if charge_id is not None:
        charge = engine.store.charges.get(charge_id)
        if charge is None:
            raise errors.resource_missing("charge", charge_id, param="charge")
        if pi_id is not None and charge.payment_intent != pi_id:
            raise errors.parameter_invalid(
                "charge", f"Charge {charge_id} does not belong to PaymentIntent {pi_id}."
            )
        return charge
    assert pi_id is not None
    pi = engine.store.intents.get(pi_id)
    if pi is None:
        raise errors.resource_missing("payment_intent", pi_id, param="payment_intent")
    if pi.status != "succeeded" or pi.latest_charge is None:
        raise errors.StripeError(
            400,
            f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
            param="payment_intent",
        )
    return engine.store.charges[pi.latest_charge]


def create_refund(engine: Engine, params: Params, ctx: RequestContext) -> dict[str, Any]:
    params.reject_unknown(
        {"payment_intent", "charge", "amount", "reason", "metadata", "expand", "instructions_email"}
    )
    amount = params.integer("amount", minimum=1)
    reason = params.choice("reason", REFUND_REASONS)
    metadata = apply_metadata({}, params.metadata())
    expand = params.expand()
    charge = _refundable_charge(engine, params)
    if not charge.captured:
        raise errors.StripeError(
            400,
            f"Charge {charge.id} has not been captured; cancel its PaymentIntent instead.",
            param="charge",
        )
    remaining = charge.amount - charge.amount_refunded
    if remaining <= 0:
        raise errors.StripeError(
            400, f"Charge {charge.id} has already been refunded.", code="charge_already_refunded"
        )
    amount = remaining if amount is None else amount
    if amount > remaining:
        raise errors.StripeError(
            400,
            f"Refund amount ({_money(amount, charge.currency)}) is greater than unrefunded "
            f"amount on charge ({_money(remaining, charge.currency)})",
            code="amount_too_large",
            param="amount",
        )
    refund = Refund(
        id=new_id("re"),
        amount=amount,
        currency=charge.currency,
        created=engine.clock.seconds(),
        charge=charge.id,
        payment_intent=charge.payment_intent,
        status="pending" if charge.refund_fails else "succeeded",
        reason=reason,
        metadata=metadata,
    )
    engine.store.refunds[refund.id] = refund
    charge.refund_ids.append(refund.id)
    engine.store.intents[charge.payment_intent].refund_ids.append(refund.id)
    charge.amount_refunded += amount
    engine.emit("refund.created", render_refund(refund), ctx)
    engine.emit("charge.refunded", engine.render_charge(charge.id), ctx)
    if charge.refund_fails:
        engine.later(REFUND_FAILS_AFTER_SECONDS, lambda: _fail_refund(engine, refund.id))
    return _render_refund(engine, refund, expand)


def _fail_refund(engine: Engine, refund_id: str) -> None:
    refund = engine.store.refunds.get(refund_id)
    if refund is None or refund.status != "pending":
        return  # the data was reset meanwhile
    charge = engine.store.charges[refund.charge]
    charge.amount_refunded -= refund.amount
    refund.status = "failed"
    refund.failure_reason = "declined"
    rendered = render_refund(refund)
    engine.emit("refund.updated", rendered, NO_REQUEST, previous_attributes={"status": "pending"})
    engine.emit("refund.failed", rendered, NO_REQUEST)


def _render_refund(engine: Engine, refund: Refund, expand: frozenset[str]) -> dict[str, Any]:
    return render_refund(
        refund,
        charge=engine.render_charge(refund.charge) if "charge" in expand else None,
        payment_intent=engine.render_intent(engine.store.intents[refund.payment_intent])
        if "payment_intent" in expand
        else None,
    )


def retrieve_refund(engine: Engine, refund_id: str, params: Params) -> dict[str, Any]:
    refund = engine.store.refunds.get(refund_id)
    if refund is None:
        raise errors.resource_missing("refund", refund_id)
    return _render_refund(engine, refund, params.expand())


def list_refunds(engine: Engine, params: Params) -> dict[str, Any]:
    limit = _limit(params)
    pi_id = params.string("payment_intent")
    charge_id = params.string("charge")
    if pi_id is not None:
        pi = engine.store.intents.get(pi_id)
        ids = pi.refund_ids if pi is not None else []
    elif charge_id is not None:
        charge = engine.store.charges.get(charge_id)
        ids = charge.refund_ids if charge is not None else []
    else:
        ids = list(engine.store.refunds)
    newest_first = ids[::-1]
    after = params.string("starting_after")
    if after is not None:
        if after not in engine.store.refunds:
            raise errors.resource_missing("refund", after, param="starting_after")
        newest_first = newest_first[newest_first.index(after) + 1 :]
    page = newest_first[:limit]
    return render_list(
        [render_refund(engine.store.refunds[r]) for r in page],
        url="/v1/refunds",
        has_more=len(newest_first) > limit,
    )


def retrieve_charge(engine: Engine, charge_id: str) -> dict[str, Any]:
    if charge_id not in engine.store.charges:
        raise errors.resource_missing("charge", charge_id)
    return engine.render_charge(charge_id)


def _limit(params: Params) -> int:
    limit = params.integer("limit", minimum=1)
    if limit is not None and limit > 100:
        raise errors.parameter_invalid("limit", "This value must be less than or equal to 100.")
    return limit or 10


def retrieve_event(engine: Engine, event_id: str) -> dict[str, Any]:
    event = engine.store.events.get(event_id)
    if event is None:
        raise errors.resource_missing("event", event_id)
    return render_event(event)


def list_events(engine: Engine, params: Params) -> dict[str, Any]:
    limit = _limit(params)
    after = params.string("starting_after")
    if after is not None and after not in engine.store.events:
        raise errors.resource_missing("event", after, param="starting_after")
    created: dict[str, int] = {}
    bounds = params.nested("created")
    if bounds is not None:
        for op in ("gt", "gte", "lt", "lte"):
            value = bounds.integer(op)
            if value is not None:
                created[op] = value
    elif params.has("created"):
        exact = params.integer("created")
        assert exact is not None
        created = {"gte": exact, "lte": exact}
    events, has_more = engine.store.page_events(
        event_type=params.string("type"), starting_after=after, limit=limit, created=created
    )
    return render_list([render_event(e) for e in events], url="/v1/events", has_more=has_more)


def create_endpoint(engine: Engine, params: Params, ctx: RequestContext) -> dict[str, Any]:
    params.reject_unknown(
        {"url", "enabled_events", "api_version", "description", "metadata", "connect", "expand"}
    )
    url = params.string("url", required=True)
    assert url is not None
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise errors.parameter_invalid("url", f"Invalid URL: {url}", code="url_invalid")
    enabled = params.strings("enabled_events")
    if not enabled:
        raise errors.parameter_missing("enabled_events")
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        url=url,
        secret=new_secret(),
        enabled_events=enabled,
        api_version=params.string("api_version") or engine.config.api_version,
        created=engine.clock.seconds(),
        description=params.string("description"),
        metadata=apply_metadata({}, params.metadata()),
    )
    engine.store.endpoints[endpoint.id] = endpoint
    return render_endpoint(endpoint, with_secret=True)


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


def retrieve_endpoint(engine: Engine, endpoint_id: str) -> dict[str, Any]:
    endpoint = engine.store.endpoints.get(endpoint_id)
    if endpoint is None:
        raise errors.resource_missing("webhook_endpoint", endpoint_id)
    return render_endpoint(endpoint, with_secret=False)


def list_endpoints(engine: Engine, params: Params) -> dict[str, Any]:
    limit = _limit(params)
    endpoints = list(engine.store.endpoints.values())[::-1]
    return render_list(
        [render_endpoint(e, with_secret=False) for e in endpoints[:limit]],
        url="/v1/webhook_endpoints",
        has_more=len(endpoints) > limit,
    )


def delete_endpoint(engine: Engine, endpoint_id: str) -> dict[str, Any]:
    if engine.store.endpoints.pop(endpoint_id, None) is None:
        raise errors.resource_missing("webhook_endpoint", endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

"""PaymentIntents: create, update, confirm, cancel, capture, and the sandbox's 3DS step.

The statuses and moves are Stripe's: `requires_payment_method` (no method, or the
last attempt failed) → `requires_confirmation` → `requires_action` (3DS) →
`succeeded`, or `requires_capture` for manual capture; `canceled` from any
status before success. Each operation reads all its parameters first (a failure
there is not saved under an idempotency key), then checks the status (a refusal
from here on is saved and replayed, like Stripe's), then changes the intent.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from orderdesk.sandbox import errors
from orderdesk.sandbox.cards import CARDS, CardBehaviour
from orderdesk.sandbox.engine import Engine
from orderdesk.sandbox.forms import Params, apply_metadata
from orderdesk.sandbox.objects import Charge, PaymentIntent, new_id, render_payment_method
from orderdesk.sandbox.state import RequestContext

_CURRENCY = re.compile(r"[A-Za-z]{3}")
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
_CREATE_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "metadata",
        "payment_method",
        "confirm",
        "allowed_payment_method_types",
        "automatic_payment_methods",
        "capture_method",
        "description",
        "return_url",
        "expand",
        "off_session",
        "receipt_email",
        "statement_descriptor",
        "statement_descriptor_suffix",
    }
)
_CONFIRM_PARAMS = frozenset(
    {"payment_method", "return_url", "expand", "off_session", "capture_method", "receipt_email"}
)
_UPDATE_PARAMS = frozenset(
    {"metadata", "payment_method", "amount", "description", "receipt_email", "expand"}
)
_AUTH_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)
_RETURN_URL_MESSAGE = (
    "A `return_url` must be specified because this Payment Intent is configured to "
    "automatically accept the payment methods enabled in the Dashboard, some of which may "
    "require a full page redirect to succeed. If you do not want to accept redirect-based "
    "payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents "
    "and Payment Intents."
)


def card(pm_id: str | None) -> CardBehaviour | None:
    if pm_id is None:
        return None
    behaviour = CARDS.get(pm_id)
    if behaviour is None:
        raise errors.resource_missing("PaymentMethod", pm_id, param="payment_method")
    return behaviour


def _reject_removed_types(params: Params) -> None:
    if params.has("payment_method_types"):
        raise errors.StripeError(
            400,
            "The `payment_method_types` parameter is no longer supported in this API "
            "version. Use `allowed_payment_method_types` or `automatic_payment_methods`.",
            code="payment_method_types_no_longer_supported",
            param="payment_method_types",
            saved=False,
        )


def create(engine: Engine, params: Params, ctx: RequestContext) -> dict[str, Any]:
    _reject_removed_types(params)
    params.reject_unknown(_CREATE_PARAMS)
    amount = params.integer("amount", required=True, minimum=1)
    assert amount is not None
    currency = params.string("currency", required=True)
    assert currency is not None
    if not _CURRENCY.fullmatch(currency):
        raise errors.parameter_invalid("currency", f"Invalid currency: {currency}.")
    metadata = apply_metadata({}, params.metadata())
    pm_id = params.string("payment_method")
    card(pm_id)
    capture_method = params.choice("capture_method", CAPTURE_METHODS) or "automatic"
    allowed = params.strings("allowed_payment_method_types")
    automatic = _automatic_payment_methods(params)
    if allowed is not None and automatic is not None:
        raise errors.parameter_invalid(
            "allowed_payment_method_types",
            "You cannot specify both `allowed_payment_method_types` and "
            "`automatic_payment_methods`.",
        )
    if allowed is None and automatic is None:
        automatic = {"enabled": True, "allow_redirects": "always"}
    confirm = params.boolean("confirm") or False
    return_url = params.string("return_url")
    expand = params.expand()

    intent_id = new_id("pi")
    pi = PaymentIntent(
        id=intent_id,
        amount=amount,
        currency=currency.lower(),
        created=engine.clock.seconds(),
        capture_method=capture_method,
        client_secret=f"{intent_id}_secret_{secrets.token_hex(12)}",
        description=params.string("description"),
        metadata=metadata,
        payment_method=pm_id,
        status="requires_confirmation" if pm_id else "requires_payment_method",
        automatic_payment_methods=automatic,
        allowed_payment_method_types=allowed,
        return_url=return_url,
    )
    if confirm:
        _check_return_url(engine, pi, return_url)
    engine.store.intents[pi.id] = pi
    engine.emit("payment_intent.created", engine.render_intent(pi), ctx)
    if confirm:
        _attempt(engine, pi, ctx)
    return engine.render_intent(pi, expand)


def _automatic_payment_methods(params: Params) -> dict[str, Any] | None:
    nested = params.nested("automatic_payment_methods")
    if nested is None:
        return None
    nested.reject_unknown({"enabled", "allow_redirects"})
    enabled = nested.boolean("enabled")
    if enabled is None:
        raise errors.parameter_missing("automatic_payment_methods[enabled]")
    redirects = nested.choice("allow_redirects", ("always", "never")) or "always"
    return {"enabled": enabled, "allow_redirects": redirects}


def _check_return_url(engine: Engine, pi: PaymentIntent, return_url: str | None) -> None:
    automatic = pi.automatic_payment_methods
    if (
        engine.config.require_return_url
        and automatic is not None
        and automatic.get("enabled")
        and automatic.get("allow_redirects") != "never"
        and not (return_url or pi.return_url)
    ):
        raise errors.StripeError(400, _RETURN_URL_MESSAGE, param="return_url", saved=False)


def retrieve(engine: Engine, intent_id: str, params: Params) -> dict[str, Any]:
    pi = engine.intent(intent_id)
    params.reject_unknown({"expand", "client_secret"})
    return engine.render_intent(pi, params.expand())


def update(engine: Engine, intent_id: str, params: Params, ctx: RequestContext) -> dict[str, Any]:
    pi = engine.intent(intent_id)
    _reject_removed_types(params)
    params.reject_unknown(_UPDATE_PARAMS)
    changes = params.metadata()
    amount = params.integer("amount", minimum=1)
    pm_id = params.string("payment_method")
    card(pm_id)
    description = params.string("description")
    expand = params.expand()
    if (amount is not None or pm_id is not None) and pi.status not in CONFIRMABLE:
        raise errors.unexpected_state(
            f"You cannot update this PaymentIntent because it has a status of {pi.status}.",
            engine.render_intent(pi),
        )
    pi.metadata = apply_metadata(pi.metadata, changes)
    if description is not None:
        pi.description = description
    if amount is not None:
        pi.amount = amount
    if pm_id is not None:
        pi.payment_method = pm_id
        pi.status = "requires_confirmation"
        pi.next_action = None
    return engine.render_intent(pi, expand)


def confirm(engine: Engine, intent_id: str, params: Params, ctx: RequestContext) -> dict[str, Any]:
    pi = engine.intent(intent_id)
    _reject_removed_types(params)
    params.reject_unknown(_CONFIRM_PARAMS)
    pm_id = params.string("payment_method")
    card(pm_id)
    return_url = params.string("return_url")
    expand = params.expand()
    if pi.status in CONFIRMABLE:
        _check_return_url(engine, pi, return_url)
    if pi.status not in CONFIRMABLE:
        raise errors.unexpected_state(
            f"You cannot confirm this PaymentIntent because it has a status of {pi.status}. "
            "Only a PaymentIntent with one of the following statuses may be confirmed: "
            "requires_confirmation, requires_action, requires_payment_method.",
            engine.render_intent(pi),
        )
    if pm_id is not None:
        pi.payment_method = pm_id
    if pi.payment_method is None:
        raise errors.unexpected_state(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update the PaymentIntent with a payment method and then confirm it again.",
            engine.render_intent(pi),
        )
    if return_url is not None:
        pi.return_url = return_url
    _attempt(engine, pi, ctx)
    return engine.render_intent(pi, expand)


def _attempt(engine: Engine, pi: PaymentIntent, ctx: RequestContext) -> None:
    """One payment attempt with the intent's method: decline (402), 3DS, or a charge."""
    behaviour = card(pi.payment_method)
    assert behaviour is not None
    assert pi.payment_method is not None
    if behaviour.decline is not None:
        decline = behaviour.decline
        _fail(
            engine,
            pi,
            ctx,
            {
                "type": "card_error",
                "code": decline.code,
                "decline_code": decline.decline_code,
                "message": decline.message,
            },
        )
        raise errors.StripeError(
            402,
            decline.message,
            type_="card_error",
            code=decline.code,
            decline_code=decline.decline_code,
            payment_intent=engine.render_intent(pi),
            extra={"payment_method": pi.last_payment_error["payment_method"]}
            if pi.last_payment_error
            else None,
        )
    if behaviour.requires_action:
        pi.status = "requires_action"
        pi.next_action = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "stripe_js": f"https://hooks.stripe.com/3d_secure_2/hosted?intent={pi.id}",
                "source": new_id("src"),
            },
        }
        engine.emit("payment_intent.requires_action", engine.render_intent(pi), ctx)
        return
    _charge(engine, pi, behaviour, ctx)


def _fail(engine: Engine, pi: PaymentIntent, ctx: RequestContext, error: dict[str, Any]) -> None:
    behaviour = CARDS[pi.payment_method or ""]
    error["payment_method"] = render_payment_method(
        pi.payment_method or "", behaviour.brand, behaviour.last4, pi.created
    )
    pi.status = "requires_payment_method"
    pi.last_payment_error = error
    pi.payment_method = None
    pi.next_action = None
    engine.emit("payment_intent.payment_failed", engine.render_intent(pi), ctx)


def _charge(
    engine: Engine, pi: PaymentIntent, behaviour: CardBehaviour, ctx: RequestContext
) -> None:
    assert pi.payment_method is not None
    captured = pi.capture_method != "manual"
    charge = Charge(
        id=new_id("ch"),
        amount=pi.amount,
        currency=pi.currency,
        created=engine.clock.seconds(),
        payment_intent=pi.id,
        payment_method=pi.payment_method,
        metadata=dict(pi.metadata),
        captured=captured,
        refund_fails=behaviour.refund_fails,
        amount_captured=pi.amount if captured else 0,
    )
    engine.store.charges[charge.id] = charge
    pi.latest_charge = charge.id
    pi.last_payment_error = None
    pi.next_action = None
    engine.emit("charge.succeeded", engine.render_charge(charge.id), ctx)
    if captured:
        pi.status = "succeeded"
        pi.amount_received = pi.amount
        engine.emit("payment_intent.succeeded", engine.render_intent(pi), ctx)
    else:
        pi.status = "requires_capture"
        pi.amount_capturable = pi.amount
        engine.emit("payment_intent.amount_capturable_updated", engine.render_intent(pi), ctx)


def cancel(engine: Engine, intent_id: str, params: Params, ctx: RequestContext) -> dict[str, Any]:
    pi = engine.intent(intent_id)
    params.reject_unknown({"cancellation_reason", "expand"})
    reason = params.choice("cancellation_reason", CANCELLATION_REASONS)
    expand = params.expand()
    if pi.status not in CANCELABLE:
        raise errors.unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of {pi.status}. "
            "Only a PaymentIntent with one of the following statuses may be canceled: "
            f"{', '.join(CANCELABLE)}.",
            engine.render_intent(pi),
        )
    if pi.status == "requires_capture" and pi.latest_charge is not None:
        charge = engine.store.charges[pi.latest_charge]
        charge.amount_refunded = charge.amount  # the authorisation is released
        pi.amount_capturable = 0
    pi.status = "canceled"
    pi.cancellation_reason = reason
    pi.canceled_at = engine.clock.seconds()
    pi.next_action = None
    engine.emit("payment_intent.canceled", engine.render_intent(pi), ctx)
    return engine.render_intent(pi, expand)


def capture(engine: Engine, intent_id: str, params: Params, ctx: RequestContext) -> dict[str, Any]:
    pi = engine.intent(intent_id)
    params.reject_unknown({"amount_to_capture", "expand", "metadata"})
    amount = params.integer("amount_to_capture", minimum=1)
    changes = params.metadata()
    expand = params.expand()
    if pi.status != "requires_capture" or pi.latest_charge is None:
        raise errors.unexpected_state(
            f"This PaymentIntent could not be captured because it has a status of {pi.status}. "
            "Only a PaymentIntent with one of the following statuses may be captured: "
            "requires_capture.",
            engine.render_intent(pi),
        )
    to_capture = pi.amount_capturable if amount is None else amount
    if to_capture > pi.amount_capturable:
        raise errors.StripeError(
            400,
            "The amount to capture must be less than or equal to the amount capturable.",
            code="amount_too_large",
            param="amount_to_capture",
        )
    charge = engine.store.charges[pi.latest_charge]
    charge.captured = True
    charge.amount_captured = to_capture
    charge.amount_refunded = charge.amount - to_capture  # the rest is released
    pi.metadata = apply_metadata(pi.metadata, changes)
    pi.amount_received = to_capture
    pi.amount_capturable = 0
    pi.status = "succeeded"
    engine.emit("charge.captured", engine.render_charge(charge.id), ctx)
    engine.emit("payment_intent.succeeded", engine.render_intent(pi), ctx)
    return engine.render_intent(pi, expand)


def authenticate(
    engine: Engine, intent_id: str, outcome: str, ctx: RequestContext
) -> dict[str, Any]:
    """The customer's 3DS step, which a server-side test cannot perform otherwise."""
    pi = engine.intent(intent_id)
    if pi.status != "requires_action":
        raise errors.unexpected_state(
            f"This PaymentIntent has a status of {pi.status}; only one that requires_action "
            "can be authenticated.",
            engine.render_intent(pi),
        )
    if outcome == "success":
        behaviour = card(pi.payment_method)
        assert behaviour is not None
        _charge(engine, pi, behaviour, ctx)
    else:
        _fail(
            engine,
            pi,
            ctx,
            {
                "type": "invalid_request_error",
                "code": "payment_intent_authentication_failure",
                "message": _AUTH_FAILURE_MESSAGE,
            },
        )
    return engine.render_intent(pi)

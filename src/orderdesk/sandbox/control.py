"""The sandbox's own control plane under `/_sandbox/`: not Stripe, no API key,
never faulted. Tests use it to switch faults, play the customer's 3DS step, move
the clock, and read back what money moved."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from orderdesk.sandbox import errors, intents
from orderdesk.sandbox.faults import FaultRuleError, parse_rules
from orderdesk.sandbox.forms import Params, decode_body
from orderdesk.sandbox.state import NO_REQUEST

if TYPE_CHECKING:
    from orderdesk.sandbox.app import Sandbox

_AUTHENTICATE = re.compile(r"^/_sandbox/payment_intents/([A-Za-z0-9_]+)/authenticate$")
_REDELIVER = re.compile(r"^/_sandbox/webhooks/([A-Za-z0-9_]+)/redeliver$")

Reply = tuple[int, dict[str, Any]]


async def handle(
    sandbox: Sandbox, method: str, path: str, scope: Scope, raw: bytes, headers: dict[str, str]
) -> Reply:
    try:
        params = decode_body(raw, headers.get("content-type")) if raw else {}
        query = decode_body(scope.get("query_string", b""), None)
        return _dispatch(sandbox, method, path, {**query, **params})
    except errors.StripeError as exc:
        return exc.status, exc.body()


def _dispatch(sandbox: Sandbox, method: str, path: str, params: dict[str, Any]) -> Reply:
    simple: dict[tuple[str, str], Callable[[], Reply]] = {
        ("GET", "/_sandbox/health"): lambda: (200, {"status": "ok"}),
        ("GET", "/_sandbox/ledger"): lambda: (200, sandbox.store.ledger()),
        ("GET", "/_sandbox/faults"): lambda: (200, {"rules": sandbox.faults.rules()}),
        ("POST", "/_sandbox/faults"): lambda: _set_faults(sandbox, params),
        ("DELETE", "/_sandbox/faults"): lambda: _clear_faults(sandbox),
        ("POST", "/_sandbox/clock/advance"): lambda: _advance(sandbox, params),
        ("GET", "/_sandbox/requests"): lambda: _requests(sandbox, params),
        ("GET", "/_sandbox/deliveries"): lambda: (
            200,
            {"deliveries": list(sandbox.store.deliveries)},
        ),
        ("DELETE", "/_sandbox/data"): lambda: _reset(sandbox),
    }
    action = simple.get((method, path))
    if action is not None:
        return action()
    found = _AUTHENTICATE.match(path)
    if found is not None and method == "POST":
        outcome = Params(params).choice("outcome", ("success", "failure")) or "success"
        return 200, intents.authenticate(sandbox.engine, found.group(1), outcome, NO_REQUEST)
    found = _REDELIVER.match(path)
    if found is not None and method == "POST":
        event = sandbox.store.events.get(found.group(1))
        if event is None:
            raise errors.resource_missing("event", found.group(1))
        return 200, {"event": event.id, "endpoints": sandbox.dispatcher.redeliver(event)}
    raise errors.not_found_route(method, path)


def _set_faults(sandbox: Sandbox, params: dict[str, Any]) -> Reply:
    try:
        rules = parse_rules(params)
    except FaultRuleError as exc:
        return 400, {"error": {"type": "invalid_request_error", "message": str(exc)}}
    sandbox.set_faults(rules)
    return 200, {"rules": sandbox.faults.rules()}


def _clear_faults(sandbox: Sandbox) -> Reply:
    sandbox.faults.clear()
    return 200, {"rules": []}


def _advance(sandbox: Sandbox, params: dict[str, Any]) -> Reply:
    seconds = Params(params).integer("seconds", required=True, minimum=0)
    assert seconds is not None
    sandbox.clock.advance(seconds)
    return 200, {"now": sandbox.clock.seconds()}


def _requests(sandbox: Sandbox, params: dict[str, Any]) -> Reply:
    reader = Params(params)
    path = reader.string("path")
    entries = [e for e in sandbox.store.requests if path is None or e["path"] == path]
    return 200, {"requests": entries}


def _reset(sandbox: Sandbox) -> Reply:
    sandbox.reset_data()
    return 200, {"deleted": True}

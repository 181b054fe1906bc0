"""The Stripe endpoints the sandbox answers, as one table of (method, path) to
operation. Matching is a dict lookup on the method plus one regular expression per
path shape, so the route of a request costs the same however many objects exist."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderdesk.sandbox import intents, resources
from orderdesk.sandbox.engine import Engine
from orderdesk.sandbox.forms import Params
from orderdesk.sandbox.state import RequestContext

Operation = Callable[[Engine, tuple[str, ...], Params, RequestContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Route:
    pattern: re.Pattern[str]
    operation: Operation


def _r(path: str, operation: Operation) -> Route:
    return Route(re.compile("^" + path.replace("{id}", "([A-Za-z0-9_]+)") + "$"), operation)


_ROUTES: dict[str, list[Route]] = {
    "POST": [
        _r("/v1/payment_intents", lambda e, a, p, c: intents.create(e, p, c)),
        _r("/v1/payment_intents/{id}", lambda e, a, p, c: intents.update(e, a[0], p, c)),
        _r("/v1/payment_intents/{id}/confirm", lambda e, a, p, c: intents.confirm(e, a[0], p, c)),
        _r("/v1/payment_intents/{id}/cancel", lambda e, a, p, c: intents.cancel(e, a[0], p, c)),
        _r("/v1/payment_intents/{id}/capture", lambda e, a, p, c: intents.capture(e, a[0], p, c)),
        _r("/v1/refunds", lambda e, a, p, c: resources.create_refund(e, p, c)),
        _r("/v1/webhook_endpoints", lambda e, a, p, c: resources.create_endpoint(e, p, c)),
    ],
    "GET": [
        _r("/v1/payment_intents/{id}", lambda e, a, p, c: intents.retrieve(e, a[0], p)),
        _r("/v1/refunds", lambda e, a, p, c: resources.list_refunds(e, p)),
        _r("/v1/refunds/{id}", lambda e, a, p, c: resources.retrieve_refund(e, a[0], p)),
        _r("/v1/charges/{id}", lambda e, a, p, c: resources.retrieve_charge(e, a[0])),
        _r("/v1/events", lambda e, a, p, c: resources.list_events(e, p)),
        _r("/v1/events/{id}", lambda e, a, p, c: resources.retrieve_event(e, a[0])),
        _r("/v1/webhook_endpoints", lambda e, a, p, c: resources.list_endpoints(e, p)),
        _r("/v1/webhook_endpoints/{id}", lambda e, a, p, c: resources.retrieve_endpoint(e, a[0])),
    ],
    "DELETE": [
        _r("/v1/webhook_endpoints/{id}", lambda e, a, p, c: resources.delete_endpoint(e, a[0])),
    ],
}


def match(method: str, path: str) -> tuple[Operation, tuple[str, ...]] | None:
    for route in _ROUTES.get(method, ()):
        found = route.pattern.match(path)
        if found is not None:
            return route.operation, found.groups()
    return None

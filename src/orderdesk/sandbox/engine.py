"""What every operation shares: the store, the clock, the settings, and the way a
state change becomes an event.

Operations are synchronous functions of the engine. That is the concurrency
rule of the whole sandbox: on its one event loop, a check of an intent's status
and the change that follows it run with no other request in between, so two
confirms of one intent can never both charge, however many arrive at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from orderdesk.sandbox import errors
from orderdesk.sandbox.clock import SandboxClock
from orderdesk.sandbox.config import SandboxConfig
from orderdesk.sandbox.objects import (
    Event,
    PaymentIntent,
    new_id,
    render_charge,
    render_intent,
)
from orderdesk.sandbox.state import RequestContext, Store

Publisher = Callable[[Event], None]


class Engine:
    def __init__(
        self,
        config: SandboxConfig,
        *,
        store: Store,
        clock: SandboxClock,
        publish: Publisher,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._publish = publish

    def emit(
        self,
        event_type: str,
        data_object: dict[str, Any],
        ctx: RequestContext,
        *,
        previous_attributes: dict[str, Any] | None = None,
    ) -> Event:
        pending = sum(1 for e in self.store.endpoints.values() if e.wants(event_type))
        event = Event(
            id=new_id("evt"),
            type=event_type,
            created=self.clock.seconds(),
            data_object=data_object,
            api_version=self.config.api_version,
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
            previous_attributes=previous_attributes,
            pending_webhooks=pending,
        )
        self.store.add_event(event)
        self._publish(event)
        return event

    def later(self, delay_seconds: float, action: Callable[[], None]) -> None:
        """Run `action` on the loop after a delay (a refund that fails later)."""
        asyncio.get_running_loop().call_later(delay_seconds, action)

    def intent(self, intent_id: str) -> PaymentIntent:
        pi = self.store.intents.get(intent_id)
        if pi is None:
            raise errors.resource_missing("payment_intent", intent_id, param="intent")
        return pi

    def render_intent(
        self, pi: PaymentIntent, expand: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        latest = None
        if "latest_charge" in expand and pi.latest_charge is not None:
            latest = self.render_charge(pi.latest_charge)
        return render_intent(pi, latest_charge=latest)

    def render_charge(self, charge_id: str) -> dict[str, Any]:
        charge = self.store.charges[charge_id]
        refunds = [self.store.refunds[r] for r in charge.refund_ids]
        return render_charge(charge, refunds)

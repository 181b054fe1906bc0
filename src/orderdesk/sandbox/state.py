"""Everything the sandbox holds, in memory, reached by id.

Objects live in dicts keyed by id (insertion order is creation order, which is
also the ledger's order); the few lists that are read back in pages keep an index
of their own (events by sequence number and by type, refunds by intent and
charge), so no request scans every object.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orderdesk.sandbox.objects import Charge, Event, PaymentIntent, Refund, WebhookEndpoint


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What an event records about the request that caused it."""

    request_id: str | None
    idempotency_key: str | None


NO_REQUEST = RequestContext(None, None)


@dataclass
class Store:
    intents: dict[str, PaymentIntent] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    _event_seq: dict[str, int] = field(default_factory=dict)
    _events_in_order: list[str] = field(default_factory=list)
    _events_by_type: dict[str, list[int]] = field(default_factory=dict)
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    deliveries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))

    def add_event(self, event: Event) -> None:
        seq = len(self._events_in_order)
        self.events[event.id] = event
        self._event_seq[event.id] = seq
        self._events_in_order.append(event.id)
        self._events_by_type.setdefault(event.type, []).append(seq)

    def page_events(
        self,
        *,
        event_type: str | None,
        starting_after: str | None,
        limit: int,
        created: dict[str, int],
    ) -> tuple[list[Event], bool]:
        """Newest first, as Stripe lists: those older than `starting_after`, of one
        type if asked, within the `created[gt|gte|lt|lte]` bounds."""
        seqs: Sequence[int] = (
            self._events_by_type.get(event_type, [])
            if event_type is not None
            else range(len(self._events_in_order))
        )
        end = len(seqs)
        if starting_after is not None:
            end = bisect.bisect_left(seqs, self._event_seq[starting_after])
        found: list[Event] = []
        for position in range(end - 1, -1, -1):
            event = self.events[self._events_in_order[seqs[position]]]
            if _too_old(event.created, created):
                break  # created never decreases along the list
            if _too_new(event.created, created):
                continue
            if len(found) == limit:
                return found, True
            found.append(event)
        return found, False

    def ledger(self) -> dict[str, Any]:
        return {
            "charges": [
                {
                    "id": c.id,
                    "payment_intent": c.payment_intent,
                    "amount": c.amount,
                    "currency": c.currency,
                    "metadata": dict(c.metadata),
                    "captured": c.captured,
                    "refunded_amount": c.amount_refunded,
                }
                for c in self.charges.values()
            ],
            "refunds": [
                {
                    "id": r.id,
                    "payment_intent": r.payment_intent,
                    "charge": r.charge,
                    "amount": r.amount,
                    "status": r.status,
                }
                for r in self.refunds.values()
            ],
        }

    def clear(self) -> None:
        """Forget every object, event and log entry; endpoints registered by flag
        are put back by the caller."""
        for container in (
            self.intents,
            self.charges,
            self.refunds,
            self.endpoints,
            self.events,
            self._event_seq,
            self._events_by_type,
        ):
            container.clear()
        self._events_in_order.clear()
        self.requests.clear()
        self.deliveries.clear()


def _too_old(created: int, bounds: dict[str, int]) -> bool:
    return ("gt" in bounds and created <= bounds["gt"]) or (
        "gte" in bounds and created < bounds["gte"]
    )


def _too_new(created: int, bounds: dict[str, int]) -> bool:
    return ("lt" in bounds and created >= bounds["lt"]) or (
        "lte" in bounds and created > bounds["lte"]
    )

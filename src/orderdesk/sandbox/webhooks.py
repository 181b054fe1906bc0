"""Webhook delivery: each event to each endpoint that wants it, signed at send
time, retried with exponential backoff until a 2xx or the attempts run out.

Delivery always runs in tasks of its own, so an API answer never waits for a
receiver. The signature is Stripe's scheme (stripe 16.1 `WebhookSignature`):
`t=<unix now>,v1=<hex HMAC-SHA256 keyed with the whole whsec_ string over
"{t}.{body}">`; `t` is wall time, not the sandbox clock, because the receiver
checks it against its own. Webhook faults are decided once per event and apply
to every endpoint and attempt of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from orderdesk.sandbox.config import SandboxConfig
from orderdesk.sandbox.faults import FaultBook, FaultRule
from orderdesk.sandbox.objects import Event, WebhookEndpoint, render_event
from orderdesk.sandbox.state import Store

logger = logging.getLogger("orderdesk.sandbox.webhooks")
CONTENT_TYPE = "application/json; charset=utf-8"
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
DEFAULT_FAULT_DELAY_MS = 1000


def signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The v1 signature: the secret is the HMAC key as it is, prefix and all."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    return f"t={timestamp},v1={signature(payload, secret, timestamp)}"


def event_body(event: Event, endpoint: WebhookEndpoint) -> bytes:
    """Compact JSON, rendered in the endpoint's API version (only the field changes:
    the sandbox has one object shape)."""
    rendered = render_event(event)
    rendered["api_version"] = endpoint.api_version
    return orjson.dumps(rendered)


@dataclass
class _Reorder:
    rule: FaultRule
    held: list[Event] = field(default_factory=list)
    flush: asyncio.TimerHandle | None = None


class Dispatcher:
    def __init__(
        self,
        config: SandboxConfig,
        *,
        store: Store,
        faults: FaultBook,
        http: httpx.AsyncClient | None,
    ) -> None:
        self._config = config
        self._store = store
        self._faults = faults
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reorder: _Reorder | None = None

    def publish(self, event: Event) -> None:
        """Called synchronously by the operation that made the event."""
        endpoints = [e for e in self._store.endpoints.values() if e.wants(event.type)]
        if not endpoints:
            return
        rule = self._faults.for_event(event.type)
        fault = rule.fault if rule is not None else None
        if fault == "webhook_drop":
            self._record(event, None, attempt=0, outcome="dropped")
            return
        if fault == "webhook_reorder" and rule is not None:
            self._hold_for_reorder(event, rule)
            return
        copies = rule.copies if fault == "webhook_duplicate" and rule is not None else 1
        delay = 0.0
        if fault == "webhook_delay" and rule is not None:
            delay = (rule.latency_ms or DEFAULT_FAULT_DELAY_MS) / 1000
        forged = fault == "webhook_bad_signature"
        for endpoint in endpoints:
            for _ in range(copies):
                self._spawn(self._deliver(event, endpoint, delay=delay, forged=forged))

    def redeliver(self, event: Event) -> int:
        endpoints = [e for e in self._store.endpoints.values() if e.wants(event.type)]
        for endpoint in endpoints:
            self._spawn(self._deliver(event, endpoint, delay=0.0, forged=False))
        return len(endpoints)

    def _hold_for_reorder(self, event: Event, rule: FaultRule) -> None:
        """Hold events until `copies` of them are held (or `latency_ms` passed since
        the first), then send them newest first, one after the other."""
        if self._reorder is None:
            self._reorder = _Reorder(rule)
            wait = (rule.latency_ms or DEFAULT_FAULT_DELAY_MS) / 1000
            self._reorder.flush = asyncio.get_running_loop().call_later(wait, self._flush_reorder)
        self._reorder.held.append(event)
        if len(self._reorder.held) >= max(rule.copies, 2):
            self._flush_reorder()

    def _flush_reorder(self) -> None:
        batch, self._reorder = self._reorder, None
        if batch is None:
            return
        if batch.flush is not None:
            batch.flush.cancel()
        self._spawn(self._deliver_in_sequence(list(reversed(batch.held))))

    async def _deliver_in_sequence(self, events: list[Event]) -> None:
        for event in events:
            endpoints = [e for e in self._store.endpoints.values() if e.wants(event.type)]
            await asyncio.gather(
                *(self._deliver(event, e, delay=0.0, forged=False) for e in endpoints)
            )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, event: Event, endpoint: WebhookEndpoint, *, delay: float, forged: bool
    ) -> None:
        if delay:
            await asyncio.sleep(delay)
        config = self._config
        for attempt in range(1, config.webhook_max_attempts + 1):
            outcome = await self._attempt(event, endpoint, forged=forged)
            self._record(event, endpoint, attempt=attempt, outcome=outcome)
            if outcome.isdigit() and 200 <= int(outcome) < 300:
                event.pending_webhooks = max(0, event.pending_webhooks - 1)
                return
            if attempt == config.webhook_max_attempts:
                logger.warning("webhook %s to %s gave up: %s", event.id, endpoint.url, outcome)
                return
            backoff = config.webhook_backoff_seconds * config.webhook_backoff_factor ** (
                attempt - 1
            )
            await asyncio.sleep(min(backoff, config.webhook_backoff_max_seconds))

    async def _attempt(self, event: Event, endpoint: WebhookEndpoint, *, forged: bool) -> str:
        body = event_body(event, endpoint)
        secret = endpoint.secret + "_forged" if forged else endpoint.secret
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
            "Stripe-Signature": signature_header(body, secret, int(time.time())),
        }
        try:
            response = await self._client().post(
                endpoint.url,
                content=body,
                headers=headers,
                timeout=self._config.webhook_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            return f"error: {type(exc).__name__}"
        return str(response.status_code)

    def _client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        if self._own_http is None:
            self._own_http = httpx.AsyncClient()
        return self._own_http

    def _record(
        self, event: Event, endpoint: WebhookEndpoint | None, *, attempt: int, outcome: str
    ) -> None:
        self._store.deliveries.append(
            {
                "event": event.id,
                "type": event.type,
                "endpoint": endpoint.id if endpoint else None,
                "attempt": attempt,
                "outcome": outcome,
                "at": time.time(),
            }
        )

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._reorder is not None and self._reorder.flush is not None:
            self._reorder.flush.cancel()
        self._reorder = None

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        self.reset()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

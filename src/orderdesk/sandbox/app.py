"""The sandbox gateway as an ASGI app: a Stripe-speaking peer with switchable faults.

`create_app` returns a Starlette app of its own (never part of orderdesk's OpenAPI
document). A request to `/v1/…` goes through these steps, in this order:

1. authenticate the `sk_test_` key (401 otherwise), decode the parameters;
2. pick at most one API fault for the request (`faults.py`);
3. `error_before` answers now; `latency` sleeps, then carries on;
4. on a POST with `Idempotency-Key`: claim the key, or replay its saved answer,
   or refuse (400 mismatch / 409 in flight);
5. `hang` holds the claimed request here, then carries on;
6. run the operation, synchronously (see `engine.py`);
7. `error_after` swaps the answer for a 5xx; the answer is saved under the key
   unless it was a parameter error;
8. `charge_then_timeout` waits before answering; `connection_reset` starts the
   answer and drops the connection halfway through the body.

Replays (step 4) skip 5 to 7 but still get 8, so a fault on the wire hits them too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from orderdesk.sandbox import control, errors, routes
from orderdesk.sandbox.clock import SandboxClock
from orderdesk.sandbox.config import SandboxConfig
from orderdesk.sandbox.engine import Engine
from orderdesk.sandbox.faults import CONTROL_PREFIX, FaultBook, FaultRule
from orderdesk.sandbox.forms import Params, canonical, decode_body
from orderdesk.sandbox.idempotency import Claim, IdempotencyStore, SavedResponse
from orderdesk.sandbox.objects import WebhookEndpoint, new_id
from orderdesk.sandbox.state import RequestContext, Store
from orderdesk.sandbox.webhooks import Dispatcher

logger = logging.getLogger("orderdesk.sandbox")
DEFAULT_LATENCY_MS = 1000


class SimulatedConnectionReset(ConnectionResetError):
    """Raised after half a response body, so the server drops the connection (and
    an in-process `httpx.ASGITransport` raises it to the client)."""


@dataclass
class Answer:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class Sandbox:
    """One sandbox gateway's state and its ASGI entry point."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        http: httpx.AsyncClient | None = None,
        clock: SandboxClock | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SandboxClock()
        self.store = Store(requests=deque(maxlen=config.request_log_size))
        self.faults = FaultBook()
        self.faults.set(config.faults)
        self.idempotency = IdempotencyStore(self.clock, ttl_seconds=config.idempotency_ttl_seconds)
        self.dispatcher = Dispatcher(config, store=self.store, faults=self.faults, http=http)
        self.engine = Engine(
            config, store=self.store, clock=self.clock, publish=self.dispatcher.publish
        )
        self._register_flag_endpoint()

    def _register_flag_endpoint(self) -> None:
        if self.config.webhook_url is None or self.config.webhook_secret is None:
            return
        endpoint = WebhookEndpoint(
            id=new_id("we"),
            url=self.config.webhook_url,
            secret=self.config.webhook_secret,
            enabled_events=["*"],
            api_version=self.config.api_version,
            created=self.clock.seconds(),
            description="registered by --webhook-url",
        )
        self.store.endpoints[endpoint.id] = endpoint

    def reset_data(self) -> None:
        self.dispatcher.reset()
        self.store.clear()
        self.idempotency.clear()
        self._register_flag_endpoint()

    def set_faults(self, rules: tuple[FaultRule, ...]) -> None:
        self.faults.set(rules)

    async def aclose(self) -> None:
        await self.dispatcher.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = get_route_path(scope)
        raw = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = new_id("req")
        if path.startswith(CONTROL_PREFIX):
            status, body = await control.handle(self, scope["method"], path, scope, raw, headers)
            await _send(send, Answer(status, orjson.dumps(body)), request_id, headers)
            return
        await self._api(scope, send, path, raw, headers, request_id)

    async def _api(
        self,
        scope: Scope,
        send: Send,
        path: str,
        raw: bytes,
        headers: dict[str, str],
        request_id: str,
    ) -> None:
        method = scope["method"]
        key = headers.get("idempotency-key") if method == "POST" else None
        entry: dict[str, Any] = {
            "id": request_id,
            "method": method,
            "path": path,
            "idempotency_key": key,
            "at": self.clock.now(),
            "fault": None,
            "replayed": False,
        }
        self.store.requests.append(entry)
        try:
            api_key = _api_key(headers)
            params = _params(method, scope, raw, headers)
            found = routes.match(method, path)
            if found is None:
                raise errors.not_found_route(method, path)
        except errors.StripeError as exc:
            entry["status"] = exc.status
            await _send(send, _error_answer(exc), request_id, headers, method=method)
            return
        rule = self.faults.for_request(method, path)
        entry["fault"] = rule.fault if rule else None
        if rule is not None and rule.fault == "error_before":
            answer = _fault_answer(rule)
            entry["status"] = answer.status
            await _send(send, answer, request_id, headers, method=method)
            return
        if rule is not None and rule.fault == "latency":
            await asyncio.sleep((rule.latency_ms or DEFAULT_LATENCY_MS) / 1000)
        answer, replayed = await self._execute(
            found, params, api_key, key, method, path, request_id, rule
        )
        entry["status"] = answer.status
        entry["replayed"] = replayed
        await self._respond(send, answer, request_id, headers, rule, method)

    async def _execute(
        self,
        found: tuple[routes.Operation, tuple[str, ...]],
        params: dict[str, Any],
        api_key: str,
        key: str | None,
        method: str,
        path: str,
        request_id: str,
        rule: FaultRule | None,
    ) -> tuple[Answer, bool]:
        claim: Claim | None = None
        if key is not None:
            try:
                outcome = self.idempotency.begin(
                    api_key, key, endpoint=f"{method} {path}", fingerprint=canonical(params)
                )
            except errors.StripeError as exc:
                return _error_answer(exc), False
            if isinstance(outcome, SavedResponse):
                replay = Answer(
                    outcome.status,
                    outcome.body,
                    [
                        *outcome.headers,
                        ("Idempotent-Replayed", "true"),
                        ("Original-Request", outcome.request_id),
                    ],
                )
                return replay, True
            claim = outcome
        if rule is not None and rule.fault == "hang":
            await asyncio.sleep(self._held(rule))
        operation, args = found
        ctx = RequestContext(request_id, key)
        saved = True
        try:
            answer = Answer(200, orjson.dumps(operation(self.engine, args, Params(params), ctx)))
        except errors.StripeError as exc:
            answer, saved = _error_answer(exc), exc.saved
        except Exception:
            # A bug in the sandbox must not be replayed for a day under the key.
            logger.exception("sandbox operation %s %s failed", method, path)
            answer = _error_answer(errors.StripeError(500, "Sandbox bug.", type_="api_error"))
            saved = False
        if rule is not None and rule.fault == "error_after":
            answer = _fault_answer(rule, default_should_retry=False)
            saved = True
        if claim is not None:
            if saved:
                self.idempotency.finish(
                    claim,
                    SavedResponse(answer.status, answer.body, request_id, tuple(answer.headers)),
                )
            else:
                self.idempotency.release(claim)
        return answer, False

    def _held(self, rule: FaultRule) -> float:
        cap = self.config.hang_cap_seconds
        return min((rule.latency_ms / 1000) if rule.latency_ms is not None else cap, cap)

    async def _respond(
        self,
        send: Send,
        answer: Answer,
        request_id: str,
        headers: dict[str, str],
        rule: FaultRule | None,
        method: str,
    ) -> None:
        if rule is not None and rule.fault == "charge_then_timeout":
            await asyncio.sleep(self._held(rule))
        if rule is not None and rule.fault == "connection_reset":
            await _send(send, answer, request_id, headers, method=method, truncate=True)
            raise SimulatedConnectionReset("sandbox fault connection_reset")
        await _send(send, answer, request_id, headers, method=method)


def _api_key(headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if not auth:
        raise errors.missing_api_key()
    token = token.strip()
    if scheme.lower() == "basic":
        # Stripe also takes the key as the Basic user name (`curl -u sk_test_…:`).
        try:
            token = base64.b64decode(token).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            token = ""
        scheme = "bearer"
    if scheme.lower() != "bearer" or not token.startswith("sk_test_") or len(token) <= 8:
        shown = token[:8] + "*" * max(0, len(token) - 12) + token[-4:] if token else auth
        raise errors.invalid_api_key(shown)
    return token


def _params(method: str, scope: Scope, raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
    if method in ("GET", "DELETE") or not raw:
        return decode_body(scope.get("query_string", b""), None)
    return decode_body(raw, headers.get("content-type"))


def _error_answer(exc: errors.StripeError) -> Answer:
    return Answer(exc.status, orjson.dumps(exc.body()))


def _fault_answer(rule: FaultRule, *, default_should_retry: bool | None = None) -> Answer:
    answer = _error_answer(errors.injected(rule.status))
    should_retry = rule.should_retry if rule.should_retry is not None else default_should_retry
    if should_retry is not None:
        answer.headers.append(("Stripe-Should-Retry", "true" if should_retry else "false"))
    return answer


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(
    send: Send,
    answer: Answer,
    request_id: str,
    request_headers: dict[str, str],
    *,
    method: str = "GET",
    truncate: bool = False,
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(answer.body)).encode()),
        (b"request-id", request_id.encode()),
        (b"cache-control", b"no-cache, no-store"),
    ]
    version = request_headers.get("stripe-version")
    if version:
        headers.append((b"stripe-version", version.encode("latin-1")))
    # Only POSTs take a key (GET and DELETE ignore it), so only they echo it.
    key = request_headers.get("idempotency-key") if method == "POST" else None
    if key:
        headers.append((b"idempotency-key", key.encode("latin-1")))
    headers.extend((k.lower().encode(), v.encode("latin-1")) for k, v in answer.headers)
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    body = answer.body[: len(answer.body) // 2] if truncate else answer.body
    await send({"type": "http.response.body", "body": body, "more_body": truncate})


def create_app(config: SandboxConfig, *, http: httpx.AsyncClient | None = None) -> Starlette:
    """The sandbox gateway; `app.state.sandbox` is its `Sandbox`, for in-process
    owners (close it with `await app.state.sandbox.aclose()` when not served by a
    lifespan-running server). Webhooks go through `http` when given, so an owner
    can route them over an ASGI transport; otherwise through a client of its own."""
    sandbox = Sandbox(config, http=http)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await sandbox.aclose()

    app = Starlette(routes=[Mount("", app=sandbox)], lifespan=lifespan)
    app.state.sandbox = sandbox
    return app

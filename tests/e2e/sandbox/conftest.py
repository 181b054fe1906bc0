"""The sandbox gateway as a separate process, driven through the real stripe SDK,
and a loopback HTTP receiver (a thread, so sync tests can block while it works)
for its webhooks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from tests.sandbox_process import (  # noqa: F401 - fixtures
    SandboxProcess,
    running_sandbox,
    sandbox_gateway,
    sandbox_gateway_process,
)

# Test modules here start with `pytestmark = SANDBOX_MARKS`: the SDK posts with
# httpx's deprecated `data=<str>` on every request (see the payments notes, 1.7).
SANDBOX_MARKS = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]
WEBHOOK_SECRET = "whsec_" + "e2e0" * 8


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    def event(self, secret: str = WEBHOOK_SECRET) -> stripe.Event:
        """The delivery verified as Stripe's own receivers do; raises if forged."""
        event: stripe.Event = stripe.Webhook.construct_event(
            self.body, self.headers.get("stripe-signature", ""), secret
        )
        return event


@dataclass
class WebhookReceiver:
    """Records every delivery; answers with the next status of `script` (200 once
    it runs out)."""

    port: int = 0
    script: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/stripe"

    def take(self, body: bytes, headers: dict[str, str]) -> int:
        with self.lock:
            self.deliveries.append(Delivery(headers, body))
            return self.script.pop(0) if self.script else 200

    def reset(self) -> None:
        with self.lock:
            self.deliveries.clear()
            self.script.clear()

    def wait_for(
        self, predicate: Callable[[list[Delivery]], bool], *, timeout: float = 5.0
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                seen = list(self.deliveries)
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                pytest.fail(f"webhook deliveries did not arrive as expected: {len(seen)} seen")
            time.sleep(0.02)

    def of_type(self, event_type: str) -> list[Delivery]:
        with self.lock:
            seen = list(self.deliveries)
        return [d for d in seen if _type_of(d) == event_type]


def _type_of(delivery: Delivery) -> str | None:
    import json

    try:
        parsed: dict[str, Any] = json.loads(delivery.body)
    except ValueError:
        return None
    kind = parsed.get("type")
    return kind if isinstance(kind, str) else None


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.take(body, headers)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def webhook_sandbox_process(webhook_receiver: WebhookReceiver) -> Iterator[SandboxProcess]:
    """A sandbox started with `--webhook-url/--webhook-secret` and fast retries."""
    with running_sandbox(
        webhook_url=webhook_receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        extra_args=[
            "--webhook-backoff",
            "0.05",
            "--webhook-backoff-factor",
            "2",
            "--webhook-max-attempts",
            "4",
            "--webhook-timeout",
            "2",
        ],
    ) as sandbox:
        yield sandbox


@pytest.fixture
def webhook_sandbox(
    webhook_sandbox_process: SandboxProcess, webhook_receiver: WebhookReceiver
) -> SandboxProcess:
    webhook_sandbox_process.reset()
    webhook_receiver.reset()
    return webhook_sandbox_process


@pytest.fixture
def client(sandbox_gateway: SandboxProcess) -> stripe.StripeClient:  # noqa: F811
    return sandbox_gateway.stripe_client()


def paid_intent(
    client: stripe.StripeClient, *, amount: int = 1000, pm: str = "pm_card_visa", **extra: Any
) -> stripe.PaymentIntent:
    params: Any = {
        "amount": amount,
        "currency": "eur",
        "payment_method": pm,
        "confirm": True,
        "allowed_payment_method_types": ["card"],
        **extra,
    }
    return client.v1.payment_intents.create(params=params)

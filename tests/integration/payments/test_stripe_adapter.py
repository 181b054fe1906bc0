"""The Stripe adapter on the wire: the real SDK against a loopback HTTP peer (an ASGI
app under uvicorn in a thread) that answers Stripe-shaped JSON from a script and
records every request, so each test asserts what was sent, how often, and what the
caller got back. Timeouts and retries are kept small; the SDK's backoff (0.5 s and
up) is real."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn

from orderdesk.core.settings import STRIPE_API_VERSION
from orderdesk.payments.breaker import BreakerState
from orderdesk.payments.gateway import (
    GatewayMisconfigured,
    GatewayRejected,
    GatewayUnavailable,
    IntentStatus,
    OutcomeUnknown,
    PaymentDeclined,
    RefundStatus,
)
from orderdesk.payments.stripe_gateway import StripeConfig, StripeGateway
from tests.servers import free_port
from tests.unit.payments.stripe_shapes import card_error, event, payment_intent, refund

# The SDK posts with httpx's deprecated `data=<str>` (payments notes §1.7).
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

API_KEY = "sk_test_adapter"
TIMEOUT = 0.25
SLOW = 1.0  # seconds a "hanging" answer takes: well past TIMEOUT
INTENT_ID = "pi_3QaBcDeFgHiJkLmN0pQrStUv"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body, keep_blank_values=True))


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class StripePeer:
    """An ASGI app answering each request with the next scripted `Reply`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()

    def answer(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.script.clear()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(
            Recorded(
                scope["method"],
                scope["path"],
                scope["query_string"].decode(),
                headers,
                b"".join(chunks).decode(),
            )
        )
        reply = self.script.popleft() if self.script else Reply(500, {"error": {"type": "x"}})
        await asyncio.sleep(reply.delay)
        payload = json.dumps(reply.body).encode()
        response_headers = [(b"content-type", b"application/json"), (b"request-id", b"req_1")]
        response_headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": response_headers}
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[StripePeer, str]]:
    peer = StripePeer()
    port = free_port()
    config = uvicorn.Config(
        peer, host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the Stripe peer did not start"
        time.sleep(0.01)
    yield peer, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def peer(served: tuple[StripePeer, str]) -> StripePeer:
    served[0].reset()
    return served[0]


@pytest.fixture
async def make_gateway(served: tuple[StripePeer, str]) -> AsyncIterator[Any]:
    """Adapters aimed at the peer, with small timeouts; closed after the test."""
    opened: list[StripeGateway] = []

    def make(**overrides: Any) -> StripeGateway:
        values: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": served[1],
            "timeout_seconds": TIMEOUT,
            "max_retries": 2,
            "breaker_failures": 5,
            **overrides,
        }
        opened.append(StripeGateway(StripeConfig(**values)))
        return opened[-1]

    yield make
    for gateway in opened:
        await gateway.close()


async def create(gateway: StripeGateway, key: str = "orderdesk:o_1:pay1:create") -> Any:
    return await gateway.create_intent(
        amount=2599, currency="eur", metadata={"order_id": "o 1/ä"}, idempotency_key=key
    )


def ok_intent(**overrides: Any) -> Reply:
    return Reply(200, payment_intent(**overrides))


def server_error() -> Reply:
    return Reply(500, {"error": {"type": "api_error", "message": "Something went wrong"}})


# --- what is sent --------------------------------------------------------------------------


async def test_create_sends_card_only_form_fields_the_key_and_the_pinned_version(
    peer: StripePeer, make_gateway: Any
) -> None:
    peer.answer(ok_intent())

    intent = await create(make_gateway())

    (sent,) = peer.requests
    assert (sent.method, sent.path) == ("POST", "/v1/payment_intents")
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "metadata[order_id]=o+1%2F%C3%A4" in sent.body  # brackets unencoded, value encoded
    assert sent.form == {
        "amount": "2599",
        "currency": "eur",
        "metadata[order_id]": "o 1/ä",
        "allowed_payment_method_types[0]": "card",
    }
    assert sent.headers["idempotency-key"] == "orderdesk:o_1:pay1:create"
    assert sent.headers["stripe-version"] == STRIPE_API_VERSION
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert intent.id == INTENT_ID
    assert intent.status is IntentStatus.REQUIRES_PAYMENT_METHOD


async def test_confirm_cancel_and_refund_carry_their_params_and_the_callers_keys(
    peer: StripePeer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    peer.answer(
        ok_intent(status="succeeded", latest_charge="ch_1"),
        ok_intent(status="canceled", cancellation_reason="duplicate"),
        Reply(200, refund(status="pending")),
    )

    confirmed = await gateway.confirm_intent(
        INTENT_ID, payment_method="pm_card_visa", idempotency_key="k:confirm"
    )
    canceled = await gateway.cancel_intent(
        INTENT_ID, idempotency_key="k:cancel", reason="duplicate"
    )
    refunded = await gateway.create_refund(
        payment_intent=INTENT_ID, amount=500, metadata={"refund_id": "r_1"}, idempotency_key="k:re"
    )

    confirm, cancel, refund_request = peer.requests
    assert confirm.path == f"/v1/payment_intents/{INTENT_ID}/confirm"
    assert confirm.form == {"payment_method": "pm_card_visa"}
    assert confirm.headers["idempotency-key"] == "k:confirm"
    assert cancel.path == f"/v1/payment_intents/{INTENT_ID}/cancel"
    assert cancel.form == {"cancellation_reason": "duplicate"}
    assert cancel.headers["idempotency-key"] == "k:cancel"
    assert (refund_request.path, refund_request.headers["idempotency-key"]) == (
        "/v1/refunds",
        "k:re",
    )
    assert refund_request.form == {
        "payment_intent": INTENT_ID,
        "amount": "500",
        "metadata[refund_id]": "r_1",
    }
    assert (confirmed.status, confirmed.latest_charge) == (IntentStatus.SUCCEEDED, "ch_1")
    assert canceled.status is IntentStatus.CANCELED
    assert refunded.status is RefundStatus.PENDING


async def test_retrieves_are_gets_without_an_idempotency_key(
    peer: StripePeer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    peer.answer(ok_intent(status="processing"), Reply(200, refund()))

    intent = await gateway.retrieve_intent(INTENT_ID)
    found = await gateway.retrieve_refund("re_1")

    assert [(r.method, r.path) for r in peer.requests] == [
        ("GET", f"/v1/payment_intents/{INTENT_ID}"),
        ("GET", "/v1/refunds/re_1"),
    ]
    assert all("idempotency-key" not in r.headers for r in peer.requests)
    assert intent.status is IntentStatus.PROCESSING
    assert found.status is RefundStatus.SUCCEEDED


async def test_list_events_pages_with_starting_after_and_returns_oldest_first(
    peer: StripePeer, make_gateway: Any
) -> None:
    newest = event(
        "payment_intent.succeeded", payment_intent(status="succeeded"), id="evt_3", created=30
    )
    middle = event("refund.created", refund(), id="evt_2", created=20)
    oldest = event("payment_intent.created", payment_intent(), id="evt_1", created=10)
    peer.answer(
        Reply(
            200, {"object": "list", "data": [newest, middle], "has_more": True, "url": "/v1/events"}
        ),
        Reply(200, {"object": "list", "data": [oldest], "has_more": False, "url": "/v1/events"}),
    )

    events = await make_gateway().list_events(
        created_after=5, types=["payment_intent.succeeded", "refund.created"], limit=2
    )

    first, second = peer.requests
    assert first.method == "GET"
    assert dict(parse_qsl(first.query)) == {
        "limit": "2",
        "types[0]": "payment_intent.succeeded",
        "types[1]": "refund.created",
        "created[gt]": "5",
    }
    assert dict(parse_qsl(second.query))["starting_after"] == "evt_2"
    assert [e.id for e in events] == ["evt_1", "evt_2", "evt_3"]
    assert events[2].intent is not None
    assert events[1].refund is not None


async def test_a_webhook_endpoint_is_created_with_the_pinned_api_version(
    peer: StripePeer, make_gateway: Any
) -> None:
    body = {
        "id": "we_1",
        "object": "webhook_endpoint",
        "url": "https://shop/hooks",
        "secret": "whsec_1",
    }
    peer.answer(Reply(200, body), Reply(200, body))
    gateway = make_gateway()

    endpoint = await gateway.create_webhook_endpoint(
        "https://shop/hooks", events=["payment_intent.succeeded"]
    )
    await gateway.create_webhook_endpoint("https://shop/hooks", events=["payment_intent.succeeded"])

    first, again = peer.requests
    assert first.form == {
        "url": "https://shop/hooks",
        "enabled_events[0]": "payment_intent.succeeded",
        "api_version": STRIPE_API_VERSION,
    }
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert (endpoint.id, endpoint.secret) == ("we_1", "whsec_1")


# --- the SDK's retries ------------------------------------------------------------------


async def test_a_500_then_200_is_retried_once_with_the_same_key(
    peer: StripePeer, make_gateway: Any
) -> None:
    peer.answer(server_error(), ok_intent(status="succeeded"))

    intent = await make_gateway().confirm_intent(
        INTENT_ID, payment_method="pm_card_visa", idempotency_key="orderdesk:o_1:pay1:confirm"
    )

    assert intent.status is IntentStatus.SUCCEEDED
    keys = [r.headers["idempotency-key"] for r in peer.requests]
    assert keys == ["orderdesk:o_1:pay1:confirm"] * 2


async def test_timeouts_are_an_unknown_outcome_after_exactly_one_plus_retries_requests(
    peer: StripePeer, make_gateway: Any
) -> None:
    peer.answer(*[ok_intent(status="succeeded")] * 3)
    peer.script = deque(Reply(r.status, r.body, delay=SLOW) for r in peer.script)

    with pytest.raises(OutcomeUnknown):
        await make_gateway(max_retries=2).confirm_intent(
            INTENT_ID, payment_method="pm_card_visa", idempotency_key="k:slow"
        )

    assert len(peer.requests) == 3
    assert {r.headers["idempotency-key"] for r in peer.requests} == {"k:slow"}


async def test_five_hundreds_past_the_retries_are_an_unknown_outcome(
    peer: StripePeer, make_gateway: Any
) -> None:
    peer.answer(server_error(), server_error())

    with pytest.raises(OutcomeUnknown, match="500"):
        await create(make_gateway(max_retries=1))

    assert len(peer.requests) == 2


# --- answers that are not success --------------------------------------------------------


async def test_a_402_is_a_decline_with_its_code_and_the_intent_and_is_not_retried(
    peer: StripePeer, make_gateway: Any
) -> None:
    left = payment_intent(
        status="requires_payment_method",
        last_payment_error={
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
        },
    )
    peer.answer(Reply(402, card_error(left, decline_code="insufficient_funds")))

    with pytest.raises(PaymentDeclined) as caught:
        await make_gateway().confirm_intent(
            INTENT_ID,
            payment_method="pm_card_visa_chargeDeclinedInsufficientFunds",
            idempotency_key="k",
        )

    assert (caught.value.decline.code, caught.value.decline.decline_code) == (
        "card_declined",
        "insufficient_funds",
    )
    assert caught.value.intent is not None
    assert caught.value.intent.status is IntentStatus.REQUIRES_PAYMENT_METHOD
    assert len(peer.requests) == 1


async def test_a_429_means_unavailable_and_is_not_retried(
    peer: StripePeer, make_gateway: Any
) -> None:
    peer.answer(
        Reply(
            429,
            {"error": {"type": "rate_limit_error", "message": "slow down"}},
            headers={"retry-after": "2"},
        ),
        ok_intent(),
    )

    with pytest.raises(GatewayUnavailable) as caught:
        await create(make_gateway())

    assert caught.value.retry_after == 2.0
    assert len(peer.requests) == 1


async def test_an_unexpected_state_is_a_rejection_with_the_intent(
    peer: StripePeer, make_gateway: Any
) -> None:
    peer.answer(
        Reply(
            400,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": "This PaymentIntent's status is succeeded.",
                    "payment_intent": payment_intent(status="succeeded"),
                }
            },
        )
    )

    with pytest.raises(GatewayRejected) as caught:
        await make_gateway().cancel_intent(INTENT_ID, idempotency_key="k:cancel")

    assert caught.value.code == "payment_intent_unexpected_state"
    assert caught.value.intent is not None
    assert caught.value.intent.status is IntentStatus.SUCCEEDED


async def test_a_refused_key_is_a_configuration_error(peer: StripePeer, make_gateway: Any) -> None:
    peer.answer(
        Reply(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
    )

    with pytest.raises(GatewayMisconfigured):
        await create(make_gateway())


# --- the breaker --------------------------------------------------------------------------


async def test_the_breaker_opens_after_n_unknowns_then_sends_nothing_new_but_retrieves(
    peer: StripePeer, make_gateway: Any
) -> None:
    gateway = make_gateway(max_retries=0, breaker_failures=2)
    peer.answer(server_error(), server_error())
    for attempt in range(2):
        with pytest.raises(OutcomeUnknown):
            await create(gateway, key=f"k:{attempt}")
    assert gateway.breaker.state is BreakerState.OPEN
    sent_before = len(peer.requests)

    with pytest.raises(GatewayUnavailable):
        await create(gateway, key="k:2")
    with pytest.raises(GatewayUnavailable):
        await gateway.confirm_intent(
            INTENT_ID, payment_method="pm_card_visa", idempotency_key="k:3"
        )
    with pytest.raises(GatewayUnavailable):
        await gateway.create_refund(
            payment_intent=INTENT_ID, amount=1, metadata={}, idempotency_key="k:4"
        )
    assert len(peer.requests) == sent_before

    peer.answer(ok_intent(status="processing"))
    intent = await gateway.retrieve_intent(INTENT_ID)

    assert intent.status is IntentStatus.PROCESSING
    assert len(peer.requests) == sent_before + 1
    assert peer.requests[-1].method == "GET"


async def test_declines_do_not_open_the_breaker(peer: StripePeer, make_gateway: Any) -> None:
    gateway = make_gateway(breaker_failures=2)
    peer.answer(*[Reply(402, card_error(payment_intent()))] * 3)

    for _ in range(3):
        with pytest.raises(PaymentDeclined):
            await gateway.confirm_intent(INTENT_ID, payment_method="pm_x", idempotency_key="k")

    assert gateway.breaker.state is BreakerState.CLOSED


# --- the http_client swap ----------------------------------------------------------------


async def test_a_given_http_client_reaches_an_in_process_asgi_app() -> None:
    in_process = StripePeer()
    in_process.answer(ok_intent(status="succeeded"))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=in_process))
    gateway = StripeGateway(
        StripeConfig(api_key=API_KEY, base_url="http://sandbox.internal", timeout_seconds=2),
        http_client=client,
    )

    intent = await gateway.confirm_intent(
        INTENT_ID, payment_method="pm_card_visa", idempotency_key="k"
    )
    await gateway.close()

    (sent,) = in_process.requests
    assert sent.path == f"/v1/payment_intents/{INTENT_ID}/confirm"
    assert sent.headers["host"] == "sandbox.internal"
    assert sent.headers["idempotency-key"] == "k"
    assert intent.status is IntentStatus.SUCCEEDED
    assert not client.is_closed  # the caller's client stays the caller's
    await client.aclose()

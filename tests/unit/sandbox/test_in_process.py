"""The sandbox in process, as orderdesk will run it: the app over an
`httpx.ASGITransport`, webhooks through an injected client, faults still felt by
the stripe SDK as they would be over a socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import stripe
from starlette.applications import Starlette

from orderdesk.sandbox import SandboxConfig, create_app
from orderdesk.sandbox.faults import parse_rules

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
SECRET = "whsec_" + "cd" * 16


@dataclass
class Hooks:
    received: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        return httpx.Response(200)


@dataclass
class InProcess:
    app: Starlette
    client: stripe.StripeClient
    hooks: Hooks


@pytest.fixture
async def in_process() -> AsyncIterator[InProcess]:
    hooks = Hooks()
    webhook_http = httpx.AsyncClient(transport=httpx.MockTransport(hooks.handle))
    app = create_app(
        SandboxConfig(webhook_url="http://orderdesk.test/hooks", webhook_secret=SECRET),
        http=webhook_http,
    )
    sdk_http = stripe.HTTPXClient()
    # The SDK builds its own httpx client; routing it to the app means swapping it.
    await sdk_http._client_async.aclose()
    sdk_http._client_async = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = stripe.StripeClient(
        "sk_test_inprocess",
        base_addresses={"api": "http://sandbox.test"},
        http_client=sdk_http,
        max_network_retries=0,
    )
    yield InProcess(app, client, hooks)
    await app.state.sandbox.aclose()
    await sdk_http.close_async()  # type: ignore[no-untyped-call]
    await webhook_http.aclose()


async def _paid(client: stripe.StripeClient) -> stripe.PaymentIntent:
    return await client.v1.payment_intents.create_async(
        params={
            "amount": 700,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "allowed_payment_method_types": ["card"],
        }
    )


async def test_webhooks_go_through_the_injected_client_and_verify(in_process: InProcess) -> None:
    intent = await _paid(in_process.client)
    assert intent.status == "succeeded"
    for _ in range(100):
        if len(in_process.hooks.received) >= 3:
            break
        await asyncio.sleep(0.01)
    assert len(in_process.hooks.received) == 3
    for request in in_process.hooks.received:
        event = stripe.Webhook.construct_event(
            request.content, request.headers["stripe-signature"], SECRET
        )
        assert event.id.startswith("evt_")


async def test_connection_reset_reaches_the_sdk_as_a_connection_error(
    in_process: InProcess,
) -> None:
    sandbox = in_process.app.state.sandbox
    sandbox.set_faults(parse_rules({"path": "/v1/payment_intents", "fault": "connection_reset"}))
    with pytest.raises(stripe.APIConnectionError):
        await _paid(in_process.client)
    assert len(sandbox.store.ledger()["charges"]) == 1

"""Payments in process: orderdesk's app with the sandbox gateway inside the same
process (the MVP tier's wiring, `payments.inprocess`), reached through the real
Stripe adapter and SDK over an ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from orderdesk.container import Container
from orderdesk.payments.inprocess import InProcessGateway, webhook_secret
from orderdesk.payments.signatures import sign
from orderdesk.payments.stripe_gateway import SANDBOX_API_KEY
from tests.factories import API, Headers, create_product, customer, idempotency, place_order


@dataclass
class SandboxControl:
    """The in-process sandbox's control plane (`/_sandbox/…`) and its signer."""

    http: httpx.AsyncClient
    secret: str
    # Stripe's own endpoints (`/v1/…`) want an API key, as orderdesk's adapter sends.
    auth = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}  # noqa: RUF012 - read-only

    async def ledger(self) -> dict[str, Any]:
        response = await self.http.get("/_sandbox/ledger")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def charges_for(self, order_id: str) -> list[dict[str, Any]]:
        charges = (await self.ledger())["charges"]
        return [c for c in charges if c["metadata"].get("orderdesk_order_id") == order_id]

    async def authenticate(self, intent_id: str, outcome: str = "success") -> None:
        response = await self.http.post(
            f"/_sandbox/payment_intents/{intent_id}/authenticate", data={"outcome": outcome}
        )
        assert response.status_code == 200, response.text

    async def set_faults(self, *rules: dict[str, Any]) -> None:
        response = await self.http.post("/_sandbox/faults", json={"rules": list(rules)})
        assert response.status_code == 200, response.text

    def signed(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        import time

        stamp = int(time.time()) if timestamp is None else timestamp
        signature = sign(body, self.secret, stamp)
        return {"Stripe-Signature": signature, "Content-Type": "application/json"}


@pytest.fixture
async def sandbox(container: Container) -> AsyncIterator[SandboxControl]:
    gateway = container.payments
    assert isinstance(gateway, InProcessGateway)
    transport = httpx.ASGITransport(app=gateway.sandbox)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.invalid") as http:
        yield SandboxControl(http=http, secret=webhook_secret(container.settings))


@dataclass
class Shop:
    """A customer with an unpaid order of 2 mugs (stock 10, 1,250 EUR cents each)."""

    customer: Headers
    staff: Headers
    product_id: str
    order: dict[str, Any]

    @property
    def order_id(self) -> str:
        return str(self.order["id"])


@pytest.fixture
async def shop(client: httpx.AsyncClient, staff: Headers) -> Shop:
    _, headers = await customer(client)
    product = await create_product(client, staff, stock=10, amount=1250)
    order = await place_order(client, headers, (product["id"], 2))
    return Shop(customer=headers, staff=staff, product_id=product["id"], order=order)


async def pay(
    client: httpx.AsyncClient,
    headers: Headers,
    order_id: str,
    payment_method: str = "pm_card_visa",
    *,
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        f"{API}/orders/{order_id}/pay",
        json={"payment_method": payment_method},
        headers=idempotency(headers, key),
    )


async def payments_of(client: httpx.AsyncClient, headers: Headers, order_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/orders/{order_id}/payments", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body

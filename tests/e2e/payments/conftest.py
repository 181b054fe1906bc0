"""orderdesk and the sandbox gateway as two processes: `orderdesk serve` pays
through `orderdesk sandbox-gateway` over HTTP (the Stripe SDK on the wire), and the
sandbox sends its signed webhooks back to the server."""

from __future__ import annotations

import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import migrate_and_seed
from tests.factories import STRONG_PASSWORD, unique_email
from tests.helpers import DatabaseFactory
from tests.sandbox_process import SandboxProcess, running_sandbox
from tests.servers import free_port, run_cli, server_env, serving

API = "/api/v1"


@dataclass(frozen=True)
class PaymentStack:
    base_url: str
    sandbox: SandboxProcess
    admin: dict[str, str]
    env: dict[str, str]
    workdir: Path
    stderr_path: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0, **kwargs)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`orderdesk ARGS` with the server's settings."""
        return run_cli(self.env, self.workdir, *args)


def _token(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = http.post(f"{API}/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
async def payments_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create(backend)


@contextmanager
def running_stack(
    database_url: str, workdir: Path, *, sandbox_args: Sequence[str] = ()
) -> Iterator[PaymentStack]:
    """A sandbox process and an `orderdesk serve` paying through it, migrated and
    seeded; the sandbox delivers its webhooks to the server."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    secret = "whsec_" + secrets.token_hex(24)
    with running_sandbox(
        webhook_url=f"{base_url}{API}/payments/webhook",
        webhook_secret=secret,
        extra_args=["--webhook-backoff", "0.2", *sandbox_args],
    ) as sandbox:
        env = {
            **server_env(database_url),
            "ORDERDESK_PAYMENT_GATEWAY_URL": sandbox.url,
            "ORDERDESK_STRIPE_API_KEY": sandbox.api_key,
            "ORDERDESK_STRIPE_WEBHOOK_SECRETS": secret,
            "ORDERDESK_PAYMENT_GATEWAY_TIMEOUT_SECONDS": "2",
            "ORDERDESK_PAYMENT_GATEWAY_MAX_RETRIES": "1",
        }
        admin_email, admin_password = migrate_and_seed(env, workdir)
        with serving(env, workdir, port) as stderr_path:
            with httpx.Client(base_url=base_url, timeout=30.0) as http:
                admin = _token(http, admin_email, admin_password)
            yield PaymentStack(
                base_url=base_url,
                sandbox=sandbox,
                admin=admin,
                env=env,
                workdir=workdir,
                stderr_path=stderr_path,
            )


@pytest.fixture(scope="module")
def stack(
    payments_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PaymentStack]:
    with running_stack(payments_database_url, tmp_path_factory.mktemp("payments")) as running:
        yield running


@dataclass(frozen=True)
class OrderToPay:
    id: str
    customer: dict[str, str]


def new_order(stack: PaymentStack, http: httpx.Client, *, quantity: int = 1) -> OrderToPay:
    email, password = unique_email("payer"), STRONG_PASSWORD
    signed_up = http.post(
        f"{API}/auth/register",
        json={"email": email, "password": password, "full_name": "Payer"},
    )
    assert signed_up.status_code == 201, signed_up.text
    customer = _token(http, email, password)
    product = http.post(
        f"{API}/products",
        json={
            "sku": f"PAY-{uuid.uuid4().hex[:12]}",
            "name": "Paid mug",
            "price": {"amount": 1299, "currency": "EUR"},
            "stock": 1000,
        },
        headers=stack.admin,
    )
    assert product.status_code == 201, product.text
    order = http.post(
        f"{API}/orders",
        json={"lines": [{"product_id": product.json()["id"], "quantity": quantity}]},
        headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    return OrderToPay(id=order.json()["id"], customer=customer)


def pay(
    http: httpx.Client,
    order: OrderToPay,
    payment_method: str = "pm_card_visa",
    *,
    key: str | None = None,
) -> httpx.Response:
    return http.post(
        f"{API}/orders/{order.id}/pay",
        json={"payment_method": payment_method},
        headers={**order.customer, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def charges_of(stack: PaymentStack, order_id: str) -> list[dict[str, Any]]:
    return [
        charge
        for charge in stack.sandbox.ledger()["charges"]
        if charge["metadata"].get("orderdesk_order_id") == order_id
    ]


def wait_for_status(
    http: httpx.Client, order: OrderToPay, status: str, *, timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(f"{API}/orders/{order.id}", headers=order.customer).json()
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.1)

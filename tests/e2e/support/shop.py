"""An HTTP driver for a running server: an admin, a product, customers, and
orders placed in parallel (retried under the same Idempotency-Key when asked)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.factories import STRONG_PASSWORD, unique_email
from tests.servers import run_cli

API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(http: httpx.Client, address: str, password: str = STRONG_PASSWORD) -> str:
    response = http.post(f"{API}/auth/token", data={"username": address, "password": password})
    assert response.status_code == 200, response.text
    access: str = response.json()["access_token"]
    return access


def create_admin(env: dict[str, str], workdir: Path) -> str:
    """An admin made with `orderdesk create-admin`; their e-mail address."""
    address = unique_email("jobs-admin")
    result = run_cli(
        env, workdir, "create-admin", "--email", address, "--password", STRONG_PASSWORD
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return address


def create_product(http: httpx.Client, admin_token: str, *, stock: int = 1_000_000) -> str:
    response = http.post(
        f"{API}/products",
        json={
            "sku": f"JOBS-{uuid.uuid4().hex[:12]}",
            "name": "Background jobs mug",
            "price": {"amount": 1299, "currency": "EUR"},
            "stock": stock,
        },
        headers=bearer(admin_token),
    )
    assert response.status_code == 201, response.text
    product_id: str = response.json()["id"]
    return product_id


@dataclass(frozen=True)
class Customer:
    email: str
    token: str


def sign_up_customers(http: httpx.Client, count: int) -> list[Customer]:
    customers = []
    for _ in range(count):
        address = unique_email("jobs")
        response = http.post(
            f"{API}/auth/register",
            json={"email": address, "password": STRONG_PASSWORD, "full_name": "Jobs Customer"},
        )
        assert response.status_code == 201, response.text
        customers.append(Customer(email=address, token=sign_in(http, address)))
    return customers


@dataclass
class Placed:
    orders: dict[str, str]  # order id -> the customer's address
    refused: list[str]  # "status body" of every answer that was not a 201
    seconds: float = 0.0


def place_orders(
    http: httpx.Client,
    customers: list[Customer],
    product_id: str,
    count: int,
    *,
    pause: float = 0.0,
    retry_for: float = 0.0,
    parallel: int = 1,
) -> Placed:
    """Place `count` orders round-robin over the customers, `parallel` at a time.

    With `retry_for`, a request that fails in transport (the server was killed) or
    meets its own key still in flight is sent again with the same Idempotency-Key for
    up to that many seconds, so each order is placed exactly once."""
    started = time.monotonic()
    placed = Placed(orders={}, refused=[])
    lock = threading.Lock()

    def place(i: int) -> None:
        customer = customers[i % len(customers)]
        headers = {**bearer(customer.token), "Idempotency-Key": f"jobs-{uuid.uuid4().hex}"}
        body = {"lines": [{"product_id": product_id, "quantity": 1}]}
        give_up = time.monotonic() + retry_for
        while True:
            try:
                response = http.post(f"{API}/orders", json=body, headers=headers)
            except httpx.TransportError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.2)
                continue
            if response.status_code == 409 and time.monotonic() < give_up:
                time.sleep(0.2)
                continue
            break
        with lock:
            if response.status_code == 201:
                placed.orders[response.json()["id"]] = customer.email
            else:
                placed.refused.append(f"{response.status_code} {response.text}")
        if pause:
            time.sleep(pause)

    def place_every(lane: int) -> None:
        for i in range(lane, count, parallel):
            place(i)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for lane in pool.map(place_every, range(parallel)):
            assert lane is None
    placed.seconds = time.monotonic() - started
    return placed


@dataclass
class Shop:
    """An admin's product and some customers, made over HTTP."""

    product_id: str
    customers: list[Customer]


def open_shop(base_url: str, admin_email: str, *, customers: int) -> Shop:
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        product_id = create_product(http, sign_in(http, admin_email))
        return Shop(product_id=product_id, customers=sign_up_customers(http, customers))

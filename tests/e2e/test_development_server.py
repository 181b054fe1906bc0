"""What `make run` starts, with no settings at all: a development server signs with
a key generated for its install, which all its workers share, and refuses tokens
forged with the key once published in the source."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.factories import STRONG_PASSWORD, unique_email
from tests.helpers import access_claims, sign_claims
from tests.servers import ORDERDESK, free_port, run_cli, stop, wait_until_ready

pytestmark = pytest.mark.e2e

PUBLISHED_KEY = "orderdesk-development-secret-key-do-not-use-in-production"
WORKERS = 2


@dataclass(frozen=True)
class DevelopmentServer:
    base_url: str
    workdir: Path


@pytest.fixture(scope="module")
def development_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevelopmentServer]:
    workdir = tmp_path_factory.mktemp("development")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ORDERDESK_") and name not in {"HOST", "PORT"}
    }
    migrated = run_cli(env, workdir, "migrate", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = workdir / "serve.log"
    command = [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(WORKERS)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(process, base_url, log)
        yield DevelopmentServer(base_url=base_url, workdir=workdir)
    finally:
        stop(process)


@pytest.fixture
def http(development_server: DevelopmentServer) -> Iterator[httpx.Client]:
    # A new connection per request, so requests spread over the workers.
    with httpx.Client(
        base_url=development_server.base_url,
        timeout=10.0,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        yield client


def signed_up(http: httpx.Client) -> tuple[str, str]:
    """A new customer's id and access token."""
    email = unique_email("dev")
    registered = http.post(
        "/api/v1/auth/register",
        json={"email": email, "password": STRONG_PASSWORD, "full_name": "Dev"},
    )
    assert registered.status_code == 201, registered.text
    tokens = http.post("/api/v1/auth/token", data={"username": email, "password": STRONG_PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return registered.json()["id"], tokens.json()["access_token"]


def forged(user_id: str, key: str) -> str:
    return sign_claims(access_claims(sub=user_id), key)


def test_a_token_forged_with_the_published_key_is_refused(http: httpx.Client) -> None:
    user_id, _ = signed_up(http)

    response = http.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {forged(user_id, PUBLISHED_KEY)}"}
    )

    assert response.status_code == 401, response.text


def test_every_worker_accepts_the_tokens_any_worker_issued(http: httpx.Client) -> None:
    _, token = signed_up(http)

    statuses = {
        http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code
        for _ in range(20)
    }

    assert statuses == {200}


def test_the_generated_key_is_kept_beside_the_database_for_its_owner_only(
    development_server: DevelopmentServer, http: httpx.Client
) -> None:
    path = development_server.workdir / ".orderdesk-secret-key"
    user_id, _ = signed_up(http)
    token = forged(user_id, path.read_text().strip())

    response = http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text
    assert (development_server.workdir / "orderdesk.db").exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_card_payment_goes_through_with_nothing_else_started(
    http: httpx.Client, development_server: DevelopmentServer
) -> None:
    # No gateway settings: the sandbox runs inside the server, with Stripe's test cards.
    env = {name: value for name, value in os.environ.items() if not name.startswith("ORDERDESK_")}
    admin_email = unique_email("dev-admin")
    made = run_cli(
        env,
        development_server.workdir,
        "create-admin",
        "--email",
        admin_email,
        "--password",
        STRONG_PASSWORD,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    admin = http.post(
        "/api/v1/auth/token", data={"username": admin_email, "password": STRONG_PASSWORD}
    ).json()["access_token"]
    product = http.post(
        "/api/v1/products",
        json={
            "sku": "DEV-PAY-1",
            "name": "Mug",
            "price": {"amount": 900, "currency": "EUR"},
            "stock": 5,
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert product.status_code == 201, product.text
    _, token = signed_up(http)
    customer = {"Authorization": f"Bearer {token}"}
    order = http.post(
        "/api/v1/orders",
        json={"lines": [{"product_id": product.json()["id"], "quantity": 1}]},
        headers={**customer, "Idempotency-Key": "dev-order-1"},
    )
    assert order.status_code == 201, order.text

    paid = http.post(
        f"/api/v1/orders/{order.json()['id']}/pay",
        json={"payment_method": "pm_card_visa"},
        headers={**customer, "Idempotency-Key": "dev-pay-1"},
    )

    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"

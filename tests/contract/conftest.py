"""A real `orderdesk serve` for the contract suite, on SQLite and PostgreSQL, with a
customer and an admin signed in."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.conftest import _SEEDED
from tests.helpers import DatabaseFactory
from tests.servers import ORDERDESK, free_port, run_cli, server_env, stop, wait_until_ready

# Generated requests sign in and sign up thousands of times from one address: the
# throttles (tested elsewhere) would answer most of the run with 429.
UNTHROTTLED = {
    "ORDERDESK_SIGNIN_MAX_FAILURES_PER_ADDRESS": "1000000",
    "ORDERDESK_SIGNIN_MAX_FAILURES_PER_ACCOUNT": "1000000",
}


@dataclass(frozen=True)
class ContractServer:
    base_url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
async def contract_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    return await database_factory.create(backend)


@pytest.fixture(scope="module")
def contract_server(
    contract_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContractServer]:
    workdir = tmp_path_factory.mktemp("contract")
    env = {**server_env(contract_database_url), **UNTHROTTLED}
    assert run_cli(env, workdir, "migrate", "upgrade").returncode == 0
    seeded = run_cli(env, workdir, "seed-demo")
    credentials = _SEEDED.search(seeded.stdout)
    assert credentials, seeded.stdout + seeded.stderr
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    stderr_path = workdir / "serve.stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_until_ready(process, base_url, stderr_path)
        admin = _sign_in(base_url, credentials["email"], credentials["password"])
        customer = _customer_token(base_url)
        yield ContractServer(base_url=base_url, tokens={"admin": admin, "customer": customer})
    finally:
        stop(process)


def _sign_in(base_url: str, email: str, password: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token", data={"username": email, "password": password}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _customer_token(base_url: str) -> str:
    email, password = "contract-customer@example.com", "a long and unusual passphrase 7"
    registered = httpx.post(
        f"{base_url}/api/v1/auth/register",
        json={"email": email, "password": password, "full_name": "Contract Customer"},
    )
    registered.raise_for_status()
    return _sign_in(base_url, email, password)

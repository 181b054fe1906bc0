"""Races between several real server processes on one PostgreSQL database: duplicate
requests, overselling, double cancels, paging during inserts and lost updates.

Two `orderdesk serve` processes run as subprocesses on free ports against one fresh
migrated database; requests are spread over both, so nothing can be serialised in one
process's memory. SQLite is skipped: it serialises all writers of one file, so these
races cannot happen there (the in-process concurrency tests cover it).
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import httpx
import pytest

from tests.factories import STRONG_PASSWORD, unique_email
from tests.helpers import DatabaseFactory
from tests.servers import (
    ORDERDESK,
    free_port,
    run_cli,
    server_env,
    stop,
    wait_until_ready,
)

# Generous bounds: other work may share the machine's CPUs, and a sign-up costs an
# argon2 hash. A hung server still fails the test, it just takes longer to say so.
pytestmark = pytest.mark.timeout(600)

T = TypeVar("T")
REQUEST_TIMEOUT_SECONDS = 120.0
BURST_TIMEOUT_SECONDS = 240.0
API = "/api/v1"
SERVERS = 2


@dataclass(frozen=True)
class Cluster:
    base_urls: list[str]
    staff_email: str
    staff_password: str


def _env(database_url: str) -> dict[str, str]:
    env = server_env(database_url)
    # Small pools: other work may share the server's connection limit.
    env.update(
        ORDERDESK_DATABASE_POOL_SIZE="6",
        ORDERDESK_DATABASE_MAX_OVERFLOW="2",
        ORDERDESK_LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture(scope="module")
async def cluster_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    if backend != "postgresql":
        pytest.skip(
            "needs PostgreSQL: SQLite serialises every writer of a file, so races between "
            "server processes cannot happen there"
        )
    return await database_factory.create_migrated(backend)


@pytest.fixture(scope="module")
def cluster(
    cluster_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    assert ORDERDESK.exists(), f"{ORDERDESK} is missing; install the project into the venv"
    workdir = tmp_path_factory.mktemp("cluster")
    env = _env(cluster_database_url)
    staff_email, staff_password = unique_email("staff"), STRONG_PASSWORD
    created = run_cli(
        env, workdir, "create-admin", "--email", staff_email, "--password", staff_password
    )
    assert created.returncode == 0, created.stdout + created.stderr

    processes: list[subprocess.Popen[bytes]] = []
    try:
        started = []
        for number in range(SERVERS):
            port = free_port()
            log = workdir / f"serve-{number}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, base_url, log in started:
            wait_until_ready(process, base_url, log)
        yield Cluster(
            base_urls=[base_url for _, base_url, _ in started],
            staff_email=staff_email,
            staff_password=staff_password,
        )
    finally:
        for process in processes:
            stop(process)


# --- talking to the cluster -------------------------------------------------------


@asynccontextmanager
async def connect(cluster: Cluster) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per server; request `n` of a burst goes to `clients[n % SERVERS]`."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    clients = [
        httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits)
        for url in cluster.base_urls
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def bounded(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    async with asyncio.timeout(BURST_TIMEOUT_SECONDS):
        return list(await asyncio.gather(*awaitables))


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post(
        f"{API}/auth/token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def new_customer(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    email = unique_email("racer")
    response = await client.post(
        f"{API}/auth/register",
        json={"email": email, "password": STRONG_PASSWORD, "full_name": "Racer"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], await sign_in(client, email, STRONG_PASSWORD)


async def staff_of(cluster: Cluster, client: httpx.AsyncClient) -> dict[str, str]:
    return await sign_in(client, cluster.staff_email, cluster.staff_password)


async def new_product(
    client: httpx.AsyncClient, staff: dict[str, str], *, stock: int
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/products",
        json={
            "sku": f"RACE-{uuid.uuid4().hex[:12]}",
            "name": "Contended mug",
            "price": {"amount": 1000, "currency": "EUR"},
            "stock": stock,
        },
        headers=staff,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stock_of(client: httpx.AsyncClient, product_id: str) -> int:
    response = await client.get(f"{API}/products/{product_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["stock"])


def order_request(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    product_id: str,
    quantity: int,
    key: str | None = None,
) -> Awaitable[httpx.Response]:
    return client.post(
        f"{API}/orders",
        json={"lines": [{"product_id": product_id, "quantity": quantity}]},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def own_orders(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/orders", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def code_of(response: httpx.Response) -> str:
    return str(response.json().get("code"))


# --- the races ----------------------------------------------------------------------


async def test_fifty_concurrent_requests_with_one_key_place_one_order(cluster: Cluster) -> None:
    async with connect(cluster) as clients:
        staff = await staff_of(cluster, clients[0])
        _, shopper = await new_customer(clients[0])
        product = await new_product(clients[0], staff, stock=100)

        responses = await bounded(
            [
                order_request(clients[n % SERVERS], shopper, product["id"], 3, key="one-key")
                for n in range(50)
            ]
        )

        created = [response for response in responses if response.status_code == 201]
        others = [response for response in responses if response.status_code != 201]
        assert created, [response.text for response in responses[:5]]
        assert {response.content for response in created} == {created[0].content}
        assert {response.status_code for response in others} <= {409}, [
            response.text for response in others if response.status_code != 409
        ]
        orders = await own_orders(clients[1], shopper)
        assert [order["id"] for order in orders] == [created[0].json()["id"]]
        assert await stock_of(clients[1], product["id"]) == 97


async def test_sixty_customers_racing_for_ten_units_never_oversell(cluster: Cluster) -> None:
    async with connect(cluster) as clients:
        staff = await staff_of(cluster, clients[0])
        product = await new_product(clients[0], staff, stock=10)
        gate = asyncio.Semaphore(8)  # sign-ups are CPU-bound; the race is the orders

        async def sign_up(n: int) -> tuple[str, dict[str, str]]:
            async with gate:
                return await new_customer(clients[n % SERVERS])

        customers = await bounded([sign_up(n) for n in range(60)])

        responses = await bounded(
            [
                order_request(clients[n % SERVERS], headers, product["id"], 1)
                for n, (_, headers) in enumerate(customers)
            ]
        )

        statuses = [response.status_code for response in responses]
        assert statuses.count(201) == 10, statuses
        assert statuses.count(409) == 50, statuses
        assert {code_of(r) for r in responses if r.status_code == 409} == {"insufficient_stock"}
        assert await stock_of(clients[0], product["id"]) == 0
        everyone = (
            await clients[1].get(f"{API}/orders", params={"limit": 200}, headers=staff)
        ).json()["items"]
        holding = [o for o in everyone if o["lines"][0]["product_id"] == product["id"]]
        assert len(holding) == 10


async def test_ten_concurrent_cancels_return_stock_once(cluster: Cluster) -> None:
    async with connect(cluster) as clients:
        staff = await staff_of(cluster, clients[0])
        _, shopper = await new_customer(clients[0])
        product = await new_product(clients[0], staff, stock=20)
        placed = await order_request(clients[0], shopper, product["id"], 5)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]

        responses = await bounded(
            [
                clients[n % SERVERS].post(f"{API}/orders/{order_id}/cancel", headers=shopper)
                for n in range(10)
            ]
        )

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [409] * 9, [response.text for response in responses]
        assert await stock_of(clients[1], product["id"]) == 20


async def test_paging_while_orders_are_inserted_sees_each_earlier_order_once_in_order(
    cluster: Cluster,
) -> None:
    async with connect(cluster) as clients:
        staff = await staff_of(cluster, clients[0])
        _, shopper = await new_customer(clients[0])
        product = await new_product(clients[0], staff, stock=10_000)
        gate = asyncio.Semaphore(20)

        async def place(n: int) -> str:
            async with gate:
                response = await order_request(clients[n % SERVERS], shopper, product["id"], 1)
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        originals = await bounded([place(n) for n in range(250)])
        paging_done = asyncio.Event()
        inserting = asyncio.Event()
        inserted: list[str] = []

        async def insert_while_paging() -> None:
            n = 0
            while not paging_done.is_set():
                inserted.append(await place(n))
                inserting.set()
                n += 1

        async def page_through() -> list[str]:
            seen: list[str] = []
            cursor: str | None = None
            await inserting.wait()  # make sure the inserts have begun
            for page in range(100):
                params: dict[str, Any] = {"limit": 50}
                if cursor is not None:
                    params["cursor"] = cursor
                response = await clients[page % SERVERS].get(
                    f"{API}/orders", params=params, headers=shopper
                )
                assert response.status_code == 200, response.text
                body = response.json()
                seen.extend(order["id"] for order in body["items"])
                cursor = body["next_cursor"]
                if cursor is None:
                    break
                await asyncio.sleep(0.02)  # let inserts land between pages
            paging_done.set()
            return seen

        async with asyncio.timeout(BURST_TIMEOUT_SECONDS):
            seen, _ = await asyncio.gather(page_through(), insert_while_paging())

        earlier = set(originals)
        newest_first = sorted(originals, key=UUID, reverse=True)
        assert [order_id for order_id in seen if order_id in earlier] == newest_first
        assert len(seen) == len(set(seen)), "an order was listed twice"
        assert [UUID(i) for i in seen] == sorted((UUID(i) for i in seen), reverse=True)
        assert inserted, "no order was inserted while paging"


async def test_two_concurrent_updates_with_the_same_if_match_never_both_win(
    cluster: Cluster,
) -> None:
    async with connect(cluster) as clients:
        staff = await staff_of(cluster, clients[0])
        product = await new_product(clients[0], staff, stock=1)
        path = f"{API}/products/{product['id']}"
        rounds = 5

        for round_number in range(rounds):
            current = (await clients[0].get(path)).headers["ETag"]
            responses = await bounded(
                [
                    clients[n].patch(
                        path,
                        json={"name": f"round {round_number} writer {n}"},
                        headers={**staff, "If-Match": current},
                    )
                    for n in range(SERVERS)
                ]
            )

            assert sorted(r.status_code for r in responses) == [200, 412], [
                r.text for r in responses
            ]
            assert {code_of(r) for r in responses if r.status_code == 412} == {"version_mismatch"}
            winner = next(r for r in responses if r.status_code == 200).json()
            stored = (await clients[1].get(path)).json()
            assert (stored["name"], stored["version"]) == (winner["name"], winner["version"])

        assert (await clients[0].get(path)).json()["version"] == 1 + rounds

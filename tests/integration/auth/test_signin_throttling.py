"""Sign-in throttling over HTTP: per account and address, per address, and shared
between server processes through Redis."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import RedisFailureCounter, SigninThrottle
from orderdesk.container import Container
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from tests.factories import STRONG_PASSWORD, register, unique_email
from tests.helpers import AddressedClients, make_container, make_settings
from tests.services import REDIS_URL, unavailable

TOKEN = "/api/v1/auth/token"
SESSION = "/api/v1/auth/session"
PROBLEM_JSON = "application/problem+json"
MAX_PER_ACCOUNT = 3
MAX_PER_ADDRESS = 5
WINDOW_SECONDS = 600
ATTACKER = "10.0.0.1"
HOME = "10.0.0.2"


@pytest.fixture
def limited_settings(settings: Settings) -> Settings:
    return make_settings(
        settings.database_url,
        signin_window_seconds=WINDOW_SECONDS,
        signin_max_failures_per_account=MAX_PER_ACCOUNT,
        signin_max_failures_per_address=MAX_PER_ADDRESS,
    )


@pytest.fixture
def app(limited_settings: Settings, database: Database, hasher: PasswordHasher) -> FastAPI:
    container = make_container(limited_settings, database, hasher)
    return create_app(limited_settings, container=container)


async def attempt(
    client: httpx.AsyncClient, email: str, password: str = STRONG_PASSWORD
) -> httpx.Response:
    return await client.post(TOKEN, data={"username": email, "password": password})


async def fail(client: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        response = await attempt(client, email, "not-" + STRONG_PASSWORD)
        assert response.status_code == 401, response.text


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "too_many_requests"
    assert 0 < int(response.headers["retry-after"]) <= WINDOW_SECONDS


async def test_failures_below_the_limit_do_not_block_the_right_password(
    app: FastAPI, clients: AddressedClients
) -> None:
    client = clients.at(app, HOME)
    user = await register(client)
    await fail(client, user["email"], MAX_PER_ACCOUNT - 1)

    assert (await attempt(client, user["email"])).status_code == 200


async def test_after_the_account_limit_even_the_right_password_gets_a_429(
    app: FastAPI, clients: AddressedClients
) -> None:
    client = clients.at(app, ATTACKER)
    user = await register(client)
    await fail(client, user["email"], MAX_PER_ACCOUNT)

    assert_throttled(await attempt(client, user["email"]))


async def test_an_unknown_email_is_throttled_like_a_real_account(
    app: FastAPI, clients: AddressedClients
) -> None:
    # Otherwise the 401-versus-429 difference would tell which emails have accounts.
    client = clients.at(app, ATTACKER)
    email = unique_email("nobody")
    await fail(client, email, MAX_PER_ACCOUNT)

    assert_throttled(await attempt(client, email))


async def test_cookie_sign_in_is_throttled_by_the_same_counters(
    app: FastAPI, clients: AddressedClients
) -> None:
    client = clients.at(app, ATTACKER)
    user = await register(client)
    await fail(client, user["email"], MAX_PER_ACCOUNT)

    response = await client.post(
        SESSION, data={"username": user["email"], "password": STRONG_PASSWORD}
    )

    assert_throttled(response)


async def test_a_successful_sign_in_resets_the_account_counter(
    app: FastAPI, clients: AddressedClients
) -> None:
    client = clients.at(app, HOME)
    user = await register(client)
    await fail(client, user["email"], MAX_PER_ACCOUNT - 1)
    assert (await attempt(client, user["email"])).status_code == 200
    await fail(client, user["email"], MAX_PER_ACCOUNT - 1)

    assert (await attempt(client, user["email"])).status_code == 200


async def test_another_address_can_still_sign_in_to_a_throttled_account(
    app: FastAPI, clients: AddressedClients
) -> None:
    attacker, owner = clients.at(app, ATTACKER), clients.at(app, HOME)
    user = await register(owner)
    await fail(attacker, user["email"], MAX_PER_ACCOUNT)
    assert_throttled(await attempt(attacker, user["email"]))

    response = await attempt(owner, user["email"])

    assert response.status_code == 200


async def test_the_address_limit_blocks_spraying_across_accounts(
    app: FastAPI, clients: AddressedClients
) -> None:
    attacker = clients.at(app, ATTACKER)
    user = await register(attacker)
    for _ in range(MAX_PER_ADDRESS):
        await fail(attacker, unique_email("sprayed"), 1)

    assert_throttled(await attempt(attacker, user["email"]))


async def test_the_address_limit_leaves_other_addresses_alone(
    app: FastAPI, clients: AddressedClients
) -> None:
    attacker, owner = clients.at(app, ATTACKER), clients.at(app, HOME)
    user = await register(owner)
    for _ in range(MAX_PER_ADDRESS):
        await fail(attacker, unique_email("sprayed"), 1)

    assert (await attempt(owner, user["email"])).status_code == 200


# --- shared through Redis -------------------------------------------------------------


@pytest.fixture
def redis_address() -> str:
    # Unique per test, so the keys this test creates are exactly those ending in it.
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@pytest.fixture
async def redis_clients(redis_address: str) -> AsyncIterator[list[Redis]]:
    made: list[Redis] = []
    probe = Redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except (RedisError, OSError) as exc:
        await probe.aclose()
        unavailable("Redis", exc)
    made.append(probe)
    yield made
    async for key in probe.scan_iter(match=f"orderdesk:signin:*:{redis_address}"):
        await probe.delete(key)
    for redis in made:
        await redis.aclose()


def redis_app(
    settings: Settings, database: Database, hasher: PasswordHasher, redis: Redis
) -> FastAPI:
    container: Container = dataclasses.replace(
        make_container(settings, database, hasher),
        throttle=SigninThrottle.from_settings(settings, RedisFailureCounter(redis)),
        redis=redis,
    )
    return create_app(settings, container=container)


async def test_two_servers_sharing_redis_enforce_one_limit(
    limited_settings: Settings,
    database: Database,
    hasher: PasswordHasher,
    clients: AddressedClients,
    redis_clients: list[Redis],
    redis_address: str,
) -> None:
    # Each server has its own Redis connection, as separate processes would.
    redis_clients.extend([Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)])
    first = clients.at(
        redis_app(limited_settings, database, hasher, redis_clients[1]), redis_address
    )
    second = clients.at(
        redis_app(limited_settings, database, hasher, redis_clients[2]), redis_address
    )
    user = await register(first)
    # Neither server alone sees the limit reached.
    await fail(first, user["email"], 1)
    await fail(second, user["email"], 1)
    await fail(first, user["email"], MAX_PER_ACCOUNT - 2)

    assert_throttled(await attempt(second, user["email"]))


async def test_redis_counters_keep_no_email_addresses(
    limited_settings: Settings,
    database: Database,
    hasher: PasswordHasher,
    clients: AddressedClients,
    redis_clients: list[Redis],
    redis_address: str,
) -> None:
    redis = redis_clients[0]
    client = clients.at(redis_app(limited_settings, database, hasher, redis), redis_address)
    email = unique_email("private")
    await fail(client, email, 1)

    keys = [key.decode() async for key in redis.scan_iter(match=f"*{redis_address}")]

    assert len(keys) == 2
    assert not any(email in key or email.split("@")[0] in key for key in keys)

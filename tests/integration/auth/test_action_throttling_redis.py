"""Action throttles shared through Redis: server processes sharing Redis enforce one
limit, counts stay exact under concurrency, and Redis never holds an e-mail address."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import ActionLimits, ActionThrottle, RedisFailureCounter
from orderdesk.container import Container
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from tests.factories import unique_email
from tests.fakes import RecordingMailer
from tests.helpers import AddressedClients, make_container
from tests.integration.auth.throttling import (
    RESET,
    RESET_PER_ACCOUNT,
    SIGNUP_PER_ADDRESS,
    assert_throttled,
    limited,
    sign_up,
)
from tests.services import REDIS_URL, unavailable


def random_address() -> str:
    # Unique per test, so its address keys are its own on the shared Redis.
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


class SharedRedis:
    """Connections to the test Redis, and the keys a test made there (deleted after)."""

    def __init__(self) -> None:
        self.connections: list[Redis] = []
        self.keys: set[str] = set()

    def connect(self) -> Redis:
        redis = Redis.from_url(REDIS_URL)
        self.connections.append(redis)
        return redis

    def track(self, throttle: ActionThrottle, *, targets: list[str], addresses: list[str]) -> None:
        for target in targets:
            for address in addresses:
                self.keys.update(throttle.keys(target=target, address=address))


@pytest.fixture
async def shared_redis() -> AsyncIterator[SharedRedis]:
    shared = SharedRedis()
    probe = shared.connect()
    try:
        await probe.ping()
    except (RedisError, OSError) as exc:
        await probe.aclose()
        unavailable("Redis", exc)
    yield shared
    if shared.keys:
        await probe.delete(*shared.keys)
    for redis in shared.connections:
        await redis.aclose()


def redis_container(
    settings: Settings,
    database: Database,
    hasher: PasswordHasher,
    redis: Redis,
    mailer: RecordingMailer,
) -> Container:
    """A server process's container: its own Redis connection, as a process has (and
    the test's one recording mailer)."""
    return dataclasses.replace(
        make_container(settings, database, hasher, mailer=mailer),
        limits=ActionLimits.from_settings(settings, RedisFailureCounter(redis)),
        redis=redis,
    )


@pytest.fixture
def two_servers(
    settings: Settings,
    database: Database,
    hasher: PasswordHasher,
    shared_redis: SharedRedis,
    mailer: RecordingMailer,
) -> list[Container]:
    limited_settings = limited(settings.database_url)
    return [
        redis_container(limited_settings, database, hasher, shared_redis.connect(), mailer)
        for _ in range(2)
    ]


async def test_two_servers_sharing_redis_enforce_one_reset_limit(
    two_servers: list[Container],
    clients: AddressedClients,
    shared_redis: SharedRedis,
    mailer: RecordingMailer,
) -> None:
    address = random_address()
    one_per_server = [
        clients.at(create_app(c.settings, container=c), address, container=c) for c in two_servers
    ]
    email = unique_email("shared")
    registration = await sign_up(one_per_server[0], email)
    assert registration.status_code == 201, registration.text
    shared_redis.track(two_servers[0].limits.signup, targets=[email], addresses=[address])
    shared_redis.track(two_servers[0].limits.password_reset, targets=[email], addresses=[address])

    statuses = [
        (await one_per_server[n % 2].post(RESET, json={"email": email})).status_code
        for n in range(10)
    ]

    assert statuses == [202] * 10
    assert len(mailer.of_kind("reset_password")) == RESET_PER_ACCOUNT


async def test_two_servers_sharing_redis_enforce_one_sign_up_limit(
    two_servers: list[Container], clients: AddressedClients, shared_redis: SharedRedis
) -> None:
    address = random_address()
    one_per_server = [
        clients.at(create_app(c.settings, container=c), address, container=c) for c in two_servers
    ]
    emails = [unique_email("shared") for _ in range(SIGNUP_PER_ADDRESS + 1)]
    shared_redis.track(two_servers[0].limits.signup, targets=emails, addresses=[address])
    # Neither server alone sees the limit reached.
    for n, email in enumerate(emails[:-1]):
        assert (await sign_up(one_per_server[n % 2], email)).status_code == 201

    assert_throttled(await sign_up(one_per_server[len(emails) % 2], emails[-1]))


async def test_redis_holds_no_email_addresses(
    two_servers: list[Container], clients: AddressedClients, shared_redis: SharedRedis
) -> None:
    address = random_address()
    container = two_servers[0]
    client = clients.at(
        create_app(container.settings, container=container), address, container=container
    )
    email = unique_email("private")
    shared_redis.track(container.limits.signup, targets=[email], addresses=[address])
    shared_redis.track(container.limits.password_reset, targets=[email], addresses=[address])
    await sign_up(client, email)
    await client.post(RESET, json={"email": email})
    redis = shared_redis.connections[0]

    expected = set(container.limits.signup.keys(target=email, address=address))
    expected |= set(container.limits.password_reset.keys(target=email, address=address))
    stored = {key.decode() for key in await redis.keys("orderdesk:*")}
    assert expected <= stored
    assert not any(email in key or email.split("@")[0] in key for key in stored)


def redis_throttle(redis: Redis, *, window_seconds: int = 600, limit: int = 3) -> ActionThrottle:
    return ActionThrottle(
        counter=RedisFailureCounter(redis),
        action="test-redis",
        window_seconds=window_seconds,
        max_per_target=limit,
        max_per_address=1000,
        refusal="no",
    )


async def test_concurrent_attempts_from_several_connections_never_exceed_the_limit(
    shared_redis: SharedRedis,
) -> None:
    throttles = [redis_throttle(shared_redis.connect(), limit=3) for _ in range(4)]
    target, address = unique_email("raced"), random_address()
    shared_redis.track(throttles[0], targets=[target], addresses=[address])

    results = await asyncio.gather(
        *(throttles[n % 4].admit(target=target, address=address) for n in range(24))
    )

    assert results.count(None) == 3
    assert all(0 < retry_after <= 600 for retry_after in results if retry_after is not None)


async def test_a_redis_window_closes_and_lets_attempts_through_again(
    shared_redis: SharedRedis,
) -> None:
    throttle = redis_throttle(shared_redis.connect(), window_seconds=1, limit=1)
    target, address = unique_email("window"), random_address()
    shared_redis.track(throttle, targets=[target], addresses=[address])
    assert await throttle.admit(target=target, address=address) is None
    assert await throttle.admit(target=target, address=address) == 1

    await asyncio.sleep(1.1)

    assert await throttle.admit(target=target, address=address) is None

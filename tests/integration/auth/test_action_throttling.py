"""Throttles on actions that send mail or cost a password hash, over HTTP: sign-up,
password reset and verification re-send, per target and per client address, with
windows that close (a clock the tests move)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import ActionLimits, MemoryFailureCounter
from orderdesk.container import Container
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from tests.factories import STRONG_PASSWORD, bearer, sign_in, unique_email
from tests.fakes import ManualMonotonic, RecordingMailer
from tests.helpers import AddressedClients, close_adapters, make_container
from tests.integration.auth.throttling import (
    RESEND,
    RESEND_PER_ACCOUNT,
    RESEND_PER_ADDRESS,
    RESET,
    RESET_PER_ACCOUNT,
    RESET_PER_ADDRESS,
    SIGNUP_PER_ADDRESS,
    SIGNUP_PER_EMAIL,
    WINDOW_SECONDS,
    assert_throttled,
    limited,
    sign_up,
)

HOME, ATTACKER = "10.1.0.1", "10.1.0.2"
At = Callable[[str], httpx.AsyncClient]
_fresh = itertools.count(1)


def fresh_address() -> str:
    """An address no other request in the test came from."""
    n = next(_fresh)
    return f"10.250.{n // 250}.{n % 250 + 1}"


@pytest.fixture
def clock() -> ManualMonotonic:
    return ManualMonotonic()


@pytest.fixture
async def limited_container(
    settings: Settings,
    database: Database,
    hasher: PasswordHasher,
    clock: ManualMonotonic,
    mailer: RecordingMailer,
) -> AsyncIterator[Container]:
    limited_settings = limited(settings.database_url)
    container = dataclasses.replace(
        make_container(limited_settings, database, hasher, mailer=mailer),
        limits=ActionLimits.from_settings(limited_settings, MemoryFailureCounter(now=clock)),
    )
    yield container
    await close_adapters(container)


@pytest.fixture
def at(clients: AddressedClients, limited_container: Container) -> At:
    """`at(address)`: a client onto the limited app from that address."""
    app = create_app(limited_container.settings, container=limited_container)
    return lambda address: clients.at(app, address, container=limited_container)


# --- sign-up ---------------------------------------------------------------------------


async def test_sign_ups_past_the_address_limit_get_a_429_and_create_nothing(at: At) -> None:
    client = at(ATTACKER)
    for _ in range(SIGNUP_PER_ADDRESS):
        assert (await sign_up(client)).status_code == 201
    email = unique_email("refused")

    assert_throttled(await sign_up(client, email))

    refused = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": STRONG_PASSWORD}
    )
    assert refused.status_code == 401


async def test_the_sign_up_address_limit_leaves_other_addresses_alone(at: At) -> None:
    attacker = at(ATTACKER)
    for _ in range(SIGNUP_PER_ADDRESS):
        await sign_up(attacker)

    assert (await sign_up(at(HOME))).status_code == 201


async def test_every_sign_up_attempt_for_an_email_counts_whatever_its_outcome(
    at: At,
) -> None:
    # Refused attempts (a taken email) cost a request too, and come from anywhere.
    email = unique_email("target")
    assert (await sign_up(at("10.1.1.1"), email)).status_code == 201
    for n in range(SIGNUP_PER_EMAIL - 1):
        assert (await sign_up(at(f"10.1.2.{n}"), email)).status_code == 409

    assert_throttled(await sign_up(at("10.1.3.1"), email))


async def test_a_throttled_sign_up_is_refused_before_its_password_is_judged(at: At) -> None:
    client = at(ATTACKER)
    for _ in range(SIGNUP_PER_ADDRESS):
        await sign_up(client)

    assert_throttled(await sign_up(client, password="password123"))


async def test_sign_ups_are_let_through_again_when_the_window_closes(
    at: At, clock: ManualMonotonic
) -> None:
    client = at(ATTACKER)
    for _ in range(SIGNUP_PER_ADDRESS):
        await sign_up(client)
    assert_throttled(await sign_up(client))

    clock.advance(WINDOW_SECONDS)

    assert (await sign_up(client)).status_code == 201


# --- password reset --------------------------------------------------------------------


async def registered(at: At) -> str:
    """A new account, signed up from an address of its own."""
    response = await sign_up(at(fresh_address()))
    assert response.status_code == 201, response.text
    email: str = response.json()["email"]
    return email


async def test_a_reset_flood_answers_202_to_every_request_and_mails_only_the_limit(
    at: At, mailer: RecordingMailer
) -> None:
    email = await registered(at)
    attacker = at(ATTACKER)

    responses = [await attacker.post(RESET, json={"email": email}) for _ in range(30)]

    assert [response.status_code for response in responses] == [202] * 30
    assert {response.content for response in responses} == {responses[0].content}
    assert "retry-after" not in {name.lower() for r in responses for name in r.headers}
    sent = mailer.of_kind("reset_password")
    assert [message.to for message in sent] == [email] * RESET_PER_ACCOUNT


async def test_the_reset_limit_per_account_holds_across_addresses(
    at: At, mailer: RecordingMailer
) -> None:
    email = await registered(at)
    for n in range(RESET_PER_ACCOUNT + 3):
        assert (await at(f"10.2.0.{n}").post(RESET, json={"email": email})).status_code == 202

    assert len(mailer.of_kind("reset_password")) == RESET_PER_ACCOUNT


async def test_the_reset_limit_per_address_holds_across_accounts(
    at: At, mailer: RecordingMailer
) -> None:
    emails = [await registered(at) for _ in range(RESET_PER_ADDRESS + 1)]
    attacker = at(ATTACKER)

    statuses = [(await attacker.post(RESET, json={"email": e})).status_code for e in emails]

    assert statuses == [202] * len(emails)
    assert [m.to for m in mailer.of_kind("reset_password")] == emails[:RESET_PER_ADDRESS]


async def test_unknown_emails_use_up_the_reset_allowance_like_known_ones(
    at: At, mailer: RecordingMailer
) -> None:
    # Otherwise whether a flood is cut off would tell which emails have accounts.
    attacker = at(ATTACKER)
    for _ in range(RESET_PER_ADDRESS):
        await attacker.post(RESET, json={"email": unique_email("nobody")})
    email = await registered(at)

    assert (await attacker.post(RESET, json={"email": email})).status_code == 202
    assert mailer.of_kind("reset_password") == []


async def test_a_reset_is_mailed_again_when_the_window_closes(
    at: At, mailer: RecordingMailer, clock: ManualMonotonic
) -> None:
    email = await registered(at)
    client = at(HOME)
    for _ in range(RESET_PER_ACCOUNT + 1):
        await client.post(RESET, json={"email": email})
    assert len(mailer.of_kind("reset_password")) == RESET_PER_ACCOUNT

    clock.advance(WINDOW_SECONDS)
    await client.post(RESET, json={"email": email})

    assert len(mailer.of_kind("reset_password")) == RESET_PER_ACCOUNT + 1


# --- verification re-send --------------------------------------------------------------


async def signed_in(at: At) -> dict[str, str]:
    """Headers for a new account (signed up and in from an address of its own)."""
    return bearer(await sign_in(at(fresh_address()), await registered(at)))


async def test_resends_past_the_account_limit_get_a_429_and_mail_nothing(
    at: At, mailer: RecordingMailer
) -> None:
    client = at(HOME)
    headers = await signed_in(at)
    for _ in range(RESEND_PER_ACCOUNT):
        assert (await client.post(RESEND, headers=headers)).status_code == 202
    mailed = len(mailer.of_kind("verify_email"))

    assert_throttled(await client.post(RESEND, headers=headers))
    assert len(mailer.of_kind("verify_email")) == mailed == 1 + RESEND_PER_ACCOUNT


async def test_the_resend_account_limit_holds_across_addresses(at: At) -> None:
    headers = await signed_in(at)
    for n in range(RESEND_PER_ACCOUNT):
        assert (await at(f"10.3.0.{n}").post(RESEND, headers=headers)).status_code == 202

    assert_throttled(await at("10.3.1.1").post(RESEND, headers=headers))


async def test_the_resend_address_limit_holds_across_accounts(at: At) -> None:
    client = at(HOME)
    accounts = [await signed_in(at) for _ in range(RESEND_PER_ADDRESS)]
    for headers in accounts:
        assert (await client.post(RESEND, headers=headers)).status_code == 202

    assert_throttled(await client.post(RESEND, headers=await signed_in(at)))
    assert (await at(ATTACKER).post(RESEND, headers=accounts[0])).status_code == 202


async def test_resends_are_let_through_again_when_the_window_closes(
    at: At, clock: ManualMonotonic
) -> None:
    client = at(HOME)
    headers = await signed_in(at)
    for _ in range(RESEND_PER_ACCOUNT):
        await client.post(RESEND, headers=headers)
    assert_throttled(await client.post(RESEND, headers=headers))

    clock.advance(WINDOW_SECONDS)

    assert (await client.post(RESEND, headers=headers)).status_code == 202

"""PasswordHasher (argon2id, upgrades on sign-in) and the password strength check."""

from __future__ import annotations

import argon2
import pytest
from pydantic import ValidationError

from orderdesk.auth.passwords import PasswordHasher, password_weakness
from tests.helpers import make_settings

PASSWORD = "violet-harbour-engine-47"
EMAIL = "margaret.thistlewood@example.com"
FULL_NAME = "Margaret Thistlewood"
# The project's threshold (settings.password_min_score defaults to zxcvbn's 3 of 4).
MIN_SCORE = 3
# OWASP's floor for argon2id, stated independently of the settings module.
OWASP_MEMORY_KIB = 19456
OWASP_TIME_COST = 2


async def test_hashes_are_argon2id_with_at_least_owasps_parameters(
    hasher: PasswordHasher,
) -> None:
    parameters = argon2.extract_parameters(await hasher.hash(PASSWORD))

    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= OWASP_MEMORY_KIB
    assert parameters.time_cost >= OWASP_TIME_COST


@pytest.mark.parametrize(
    "weaker",
    [{"argon2_memory_kib": OWASP_MEMORY_KIB - 1}, {"argon2_time_cost": OWASP_TIME_COST - 1}],
    ids=["memory", "time"],
)
def test_settings_refuse_argon2_parameters_below_owasps(weaker: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        make_settings("sqlite+aiosqlite://", **weaker)


async def test_two_hashes_of_one_password_differ(hasher: PasswordHasher) -> None:
    assert await hasher.hash(PASSWORD) != await hasher.hash(PASSWORD)


async def test_the_right_password_verifies_without_an_upgrade(hasher: PasswordHasher) -> None:
    assert await hasher.verify(PASSWORD, await hasher.hash(PASSWORD)) == (True, None)


async def test_a_wrong_password_does_not_verify(hasher: PasswordHasher) -> None:
    assert await hasher.verify(PASSWORD + "x", await hasher.hash(PASSWORD)) == (False, None)


async def test_an_unknown_account_never_verifies(hasher: PasswordHasher) -> None:
    assert await hasher.verify(PASSWORD, None) == (False, None)


@pytest.mark.parametrize(
    "legacy",
    [
        argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
        argon2.PasswordHasher(
            time_cost=OWASP_TIME_COST,
            memory_cost=OWASP_MEMORY_KIB,
            parallelism=1,
            type=argon2.Type.I,
        ),
    ],
    ids=["weaker-parameters", "argon2i"],
)
async def test_a_hash_with_outdated_parameters_verifies_and_is_upgraded(
    hasher: PasswordHasher, legacy: argon2.PasswordHasher
) -> None:
    valid, upgraded = await hasher.verify(PASSWORD, legacy.hash(PASSWORD))

    assert valid
    assert upgraded is not None
    parameters = argon2.extract_parameters(upgraded)
    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= OWASP_MEMORY_KIB
    assert parameters.time_cost >= OWASP_TIME_COST
    assert await hasher.verify(PASSWORD, upgraded) == (True, None)


async def test_a_wrong_password_against_an_outdated_hash_gets_no_upgrade(
    hasher: PasswordHasher,
) -> None:
    legacy = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)

    assert await hasher.verify("not-" + PASSWORD, legacy.hash(PASSWORD)) == (False, None)


async def test_long_passwords_are_hashed_whole(hasher: PasswordHasher) -> None:
    password = "k" * 79 + "1"
    almost = "k" * 79 + "2"
    password_hash = await hasher.hash(password)

    assert await hasher.verify(password, password_hash) == (True, None)
    assert await hasher.verify(almost, password_hash) == (False, None)


@pytest.mark.parametrize("password", ["password123", "aaaaaaaa", "qwertyuiop", "12345678"])
async def test_common_or_repetitive_passwords_are_refused(password: str) -> None:
    weakness = await password_weakness(password, user_inputs=[], min_score=MIN_SCORE)

    assert weakness is not None
    assert weakness.startswith("This password is too easy to guess.")


@pytest.mark.parametrize(
    "password",
    [
        # Each of these would pass on its own (zxcvbn scores it 3 or 4 without the
        # user's details); only knowing the user makes it guessable.
        EMAIL,
        EMAIL + "1",
        "margaret.thistlewood",
        "margaret.thistlewood2024",
        "margaretthistlewood",
    ],
    ids=["email", "email-plus-digit", "local-part", "local-part-plus-year", "name-joined"],
)
async def test_passwords_built_from_the_users_email_or_name_are_refused(password: str) -> None:
    weakness = await password_weakness(
        password, user_inputs=[EMAIL, FULL_NAME], min_score=MIN_SCORE
    )

    assert weakness is not None


@pytest.mark.parametrize(
    "password",
    ["violet-harbour-engine-47", "quartz lantern drifts over seven tidal meadows"],
)
async def test_a_strong_passphrase_is_accepted(password: str) -> None:
    assert await password_weakness(password, user_inputs=[EMAIL, FULL_NAME], min_score=4) is None


LONG_PASSPHRASE = (
    "quartz lantern drifts over seven tidal meadows while copper gulls argue loudly "
    "about the price of herring at dawn"
)


@pytest.mark.parametrize("length", [64, 80, 100])
async def test_a_long_strong_passphrase_is_accepted(length: int) -> None:
    password = LONG_PASSPHRASE[:length]
    assert len(password) == length

    assert await password_weakness(password, user_inputs=[EMAIL], min_score=MIN_SCORE) is None

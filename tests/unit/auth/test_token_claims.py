"""Correctly signed access tokens whose claims have the right names but the wrong
types or out-of-range values are refused as invalid tokens (a 401), never an
unhandled error; a CSRF token of any text is refused, not an exception."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import pytest

from orderdesk.auth.tokens import InvalidToken, TokenCodec
from orderdesk.core.settings import Settings
from tests.helpers import TEST_SECRET, access_claims, hand_signed, make_settings

FAR_FUTURE = int(time.time()) + 3600
BAD_CLAIMS: dict[str, dict[str, Any]] = {
    "exp-huge-float": {"exp": 1e20},
    "exp-huge-int": {"exp": 10**20},
    "exp-past-year-9999": {"exp": 253_402_300_800},
    "exp-a-string": {"exp": "x"},
    "exp-a-bool": {"exp": True},
    "exp-a-float": {"exp": FAR_FUTURE + 0.5},
    "iat-huge": {"iat": 1e20},
    "nbf-a-list": {"nbf": [1]},
    "sid-a-number": {"sid": 123},
    "sid-not-a-uuid": {"sid": "session"},
    "sid-empty": {"sid": ""},
    "sid-an-object": {"sid": {"id": str(uuid4())}},
    "sub-a-number": {"sub": 42},
    "sub-not-a-uuid": {"sub": "alice"},
    "sub-null": {"sub": None},
    "sub-very-long": {"sub": "0" * 10_000},
    "ver-a-string": {"ver": "0"},
    "ver-a-float": {"ver": 0.0},
    "ver-a-bool": {"ver": False},
    "ver-huge": {"ver": 10**30},
    "ver-negative": {"ver": -1},
    "role-a-number": {"role": 1},
    "role-unknown": {"role": "superuser"},
    "role-null": {"role": None},
    "jti-a-number": {"jti": 5},
    "jti-very-long": {"jti": "j" * 1000},
}


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def codec(settings: Settings) -> TokenCodec:
    return TokenCodec(settings)


@pytest.mark.parametrize("case", sorted(BAD_CLAIMS))
def test_a_signed_token_with_a_mistyped_or_out_of_range_claim_is_refused(
    codec: TokenCodec, settings: Settings, case: str
) -> None:
    token = hand_signed(access_claims(settings, **BAD_CLAIMS[case]), TEST_SECRET.encode())

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


def test_the_largest_valid_claims_are_accepted(codec: TokenCodec, settings: Settings) -> None:
    claims = access_claims(settings, exp=253_402_300_799, ver=2**31 - 1, role="admin")

    decoded = codec.decode_access_token(hand_signed(claims, TEST_SECRET.encode()))

    assert (decoded.token_version, decoded.role, decoded.expires_at.year) == (
        2**31 - 1,
        "admin",
        9999,
    )


@pytest.mark.parametrize("presented", ["\xff" * 64, "é", "\x00", "🧉" * 10])
def test_a_csrf_token_with_any_characters_is_refused_without_an_error(
    codec: TokenCodec, presented: str
) -> None:
    assert codec.check_csrf(uuid4(), presented) is False

"""TokenCodec: access tokens that verify only with the pinned algorithm, the right key
and every claim present and current; CSRF tokens bound to one cookie session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from orderdesk.auth import tokens as security
from orderdesk.auth.tokens import InvalidToken, TokenCodec
from orderdesk.core.settings import Settings
from tests.helpers import TEST_SECRET, access_claims, hand_signed, make_settings, unsigned

# Every claim the codec must insist on; kept here rather than imported so that
# dropping one from the source is caught.
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "role", "typ", "ver"]
ASYMMETRIC_KEYS: dict[str, Callable[[], PrivateKeyTypes]] = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def codec(settings: Settings) -> TokenCodec:
    return TokenCodec(settings)


def valid_claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return access_claims(settings, **overrides)


def issue(codec: TokenCodec, *, now: datetime | None = None) -> str:
    return codec.issue_access_token(
        user_id=uuid4(),
        role="customer",
        token_version=0,
        session_id=uuid4(),
        now=now or datetime.now(UTC),
    )


def test_an_issued_access_token_decodes_to_what_it_was_issued_for(codec: TokenCodec) -> None:
    user_id, session_id = uuid4(), uuid4()
    now = datetime.now(UTC).replace(microsecond=0)

    token = codec.issue_access_token(
        user_id=user_id, role="staff", token_version=7, session_id=session_id, now=now
    )
    claims = codec.decode_access_token(token)

    assert claims.user_id == user_id
    assert claims.role == "staff"
    assert claims.token_version == 7
    assert claims.session_id == session_id
    assert claims.expires_at == now + codec.ttl


def test_a_hand_signed_token_with_every_claim_is_accepted(
    codec: TokenCodec, settings: Settings
) -> None:
    # The baseline for the refusals below: each changes one thing about this token.
    claims = valid_claims(settings)

    decoded = codec.decode_access_token(hand_signed(claims, TEST_SECRET.encode()))

    assert str(decoded.user_id) == claims["sub"]


def test_an_unsigned_alg_none_token_is_refused(codec: TokenCodec, settings: Settings) -> None:
    with pytest.raises(InvalidToken):
        codec.decode_access_token(unsigned(valid_claims(settings)))


def test_a_token_signed_with_another_key_is_refused(codec: TokenCodec, settings: Settings) -> None:
    token = hand_signed(valid_claims(settings), b"another-secret-key-that-is-long-enough-000")

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


def test_a_token_signed_with_the_right_key_but_another_algorithm_is_refused(
    codec: TokenCodec, settings: Settings
) -> None:
    token = hand_signed(valid_claims(settings), TEST_SECRET.encode(), alg="HS512")

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


def test_an_expired_token_is_refused(codec: TokenCodec) -> None:
    issued_at = datetime.now(UTC) - codec.ttl - timedelta(seconds=30)

    with pytest.raises(InvalidToken):
        codec.decode_access_token(issue(codec, now=issued_at))


def test_a_token_not_yet_valid_beyond_the_leeway_is_refused(
    codec: TokenCodec, settings: Settings
) -> None:
    claims = valid_claims(settings)
    claims["nbf"] = claims["iat"] + 60

    with pytest.raises(InvalidToken):
        codec.decode_access_token(hand_signed(claims, TEST_SECRET.encode()))


def test_a_token_not_yet_valid_within_the_leeway_is_accepted(
    codec: TokenCodec, settings: Settings
) -> None:
    # A couple of seconds of clock skew between servers must not lock anyone out.
    claims = valid_claims(settings)
    claims["nbf"] = claims["iat"] + 2

    decoded = codec.decode_access_token(hand_signed(claims, TEST_SECRET.encode()))

    assert str(decoded.user_id) == claims["sub"]


def test_a_token_for_another_audience_is_refused(codec: TokenCodec, settings: Settings) -> None:
    token = hand_signed(valid_claims(settings, aud="another-api"), TEST_SECRET.encode())

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


def test_a_token_from_another_issuer_is_refused(codec: TokenCodec, settings: Settings) -> None:
    token = hand_signed(valid_claims(settings, iss="someone-else"), TEST_SECRET.encode())

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
def test_a_token_missing_a_required_claim_is_refused(
    codec: TokenCodec, settings: Settings, missing: str
) -> None:
    claims = valid_claims(settings)
    del claims[missing]

    with pytest.raises(InvalidToken):
        codec.decode_access_token(hand_signed(claims, TEST_SECRET.encode()))


def test_a_token_of_another_type_is_refused(codec: TokenCodec, settings: Settings) -> None:
    token = hand_signed(valid_claims(settings, typ="refresh"), TEST_SECRET.encode())

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


def test_a_token_whose_subject_is_not_a_user_id_is_refused(
    codec: TokenCodec, settings: Settings
) -> None:
    token = hand_signed(valid_claims(settings, sub="admin"), TEST_SECRET.encode())

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


def test_a_string_that_is_not_a_jwt_is_refused(codec: TokenCodec) -> None:
    with pytest.raises(InvalidToken):
        codec.decode_access_token("not-a-jwt")


def _write_key_pair(directory: Path, algorithm: str) -> tuple[Path, Path]:
    private_key = ASYMMETRIC_KEYS[algorithm]()
    private_file, public_file = directory / "private.pem", directory / "public.pem"
    private_file.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_file.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_file, public_file


@pytest.fixture(params=sorted(ASYMMETRIC_KEYS))
def asymmetric_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    private_file, public_file = _write_key_pair(tmp_path, request.param)
    return make_settings(
        jwt_algorithm=request.param,
        jwt_private_key_file=private_file,
        jwt_public_key_file=public_file,
    )


def test_an_asymmetric_codec_signs_with_its_algorithm_and_verifies_its_tokens(
    asymmetric_settings: Settings,
) -> None:
    codec = TokenCodec(asymmetric_settings)

    token = issue(codec)

    assert jwt.get_unverified_header(token)["alg"] == asymmetric_settings.jwt_algorithm
    assert codec.decode_access_token(token).role == "customer"


def test_an_asymmetric_codec_refuses_a_token_signed_by_another_key_pair(
    asymmetric_settings: Settings, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    private_file, public_file = _write_key_pair(other_dir, asymmetric_settings.jwt_algorithm)
    other = TokenCodec(
        make_settings(
            jwt_algorithm=asymmetric_settings.jwt_algorithm,
            jwt_private_key_file=private_file,
            jwt_public_key_file=public_file,
        )
    )

    with pytest.raises(InvalidToken):
        TokenCodec(asymmetric_settings).decode_access_token(issue(other))


def test_an_asymmetric_codec_refuses_hs256_signed_with_its_public_key(
    asymmetric_settings: Settings,
) -> None:
    # Algorithm confusion: the public key is public, so an HMAC made with it proves nothing.
    assert asymmetric_settings.jwt_public_key_file is not None
    public_pem = asymmetric_settings.jwt_public_key_file.read_bytes()
    forged = hand_signed(valid_claims(asymmetric_settings), public_pem)

    with pytest.raises(InvalidToken):
        TokenCodec(asymmetric_settings).decode_access_token(forged)


def test_a_csrf_token_checks_out_for_its_own_session(codec: TokenCodec) -> None:
    session_id = uuid4()

    assert codec.check_csrf(session_id, codec.csrf_token_for(session_id))


def test_a_csrf_token_is_refused_for_another_session(codec: TokenCodec) -> None:
    token = codec.csrf_token_for(uuid4())

    assert not codec.check_csrf(uuid4(), token)


def test_a_csrf_token_made_with_another_secret_key_is_refused(codec: TokenCodec) -> None:
    session_id = uuid4()
    other = TokenCodec(make_settings(secret_key="another-secret-key-that-is-long-enough-42"))

    assert not codec.check_csrf(session_id, other.csrf_token_for(session_id))


def test_an_empty_csrf_token_is_refused(codec: TokenCodec) -> None:
    assert not codec.check_csrf(uuid4(), "")


# --- the cache of verified tokens --------------------------------------------------


def test_a_token_is_verified_once_and_then_served_from_the_cache(
    codec: TokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issue(codec)
    first = codec.decode_access_token(token)
    calls: list[str] = []
    decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return decode(*args, **kwargs)

    monkeypatch.setattr(security.jwt, "decode", counting_decode)
    again = codec.decode_access_token(token)
    other = codec.decode_access_token(issue(codec))

    assert again == first
    assert len(calls) == 1  # only the new token went through PyJWT
    assert other.jti != first.jti


def test_a_cached_token_is_refused_once_it_expires(
    codec: TokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issue(codec)
    claims = codec.decode_access_token(token)
    expired = claims.expires_at.timestamp() + security.LEEWAY_SECONDS + 1

    monkeypatch.setattr(security, "time", SimpleNamespace(time=lambda: expired))

    with pytest.raises(InvalidToken):
        codec.decode_access_token(token)


def test_a_refused_token_is_refused_every_time(codec: TokenCodec) -> None:
    token = issue(codec)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"

    for _ in range(2):
        with pytest.raises(InvalidToken):
            codec.decode_access_token(forged)

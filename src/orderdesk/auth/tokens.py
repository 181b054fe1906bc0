"""Access tokens and opaque tokens.

Access tokens are JWTs whose verification pins the algorithm and requires every
claim; opaque tokens (refresh, verification, reset) are random strings stored only
as a digest.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from orderdesk.core.ids import new_id
from orderdesk.core.settings import Settings

REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "role", "typ", "ver"]
LEEWAY_SECONDS = 5
# Access tokens whose signature and claims were verified, kept by their exact text:
# a client sends the same token with every request for its whole life, and PyJWT's
# checks are a tenth of a read's CPU. Only expiry depends on time, so it is checked
# again on every use. Roughly 1 kB per entry.
VERIFIED_TOKEN_CACHE_SIZE = 4096


def hash_token(token: str) -> str:
    """Opaque tokens (refresh, verification, reset) are stored only as this digest:
    they are long random strings, so a fast hash is enough and lookups stay indexed."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: UUID
    role: str
    token_version: int
    session_id: UUID | None
    jti: str
    expires_at: datetime


class InvalidToken(Exception):
    pass


# Claim bounds. A token we did not issue can still carry our signature (a leaked key,
# a bug elsewhere): its claims are checked for type and range, so no value reaches
# datetime, UUID or SQL as something they would fail on.
MAX_TOKEN_VERSION = 2**31 - 1
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second datetime holds
MAX_JTI_LENGTH = 64
ROLES = frozenset({"customer", "staff", "admin"})


def _uuid_claim(value: object, name: str) -> UUID:
    if not isinstance(value, str) or len(value) > 36:
        raise InvalidToken(f"{name} must be a UUID string")
    return UUID(value)


def _int_claim(value: object, name: str, *, low: int, high: int) -> int:
    # bool is an int in Python; a float is not a count or a time we issue.
    if type(value) is not int or not low <= value <= high:
        raise InvalidToken(f"{name} must be an integer in [{low}, {high}]")
    return value


def _access_claims(claims: dict[str, Any]) -> AccessClaims:
    """The verified claims, each of the type and within the range we issue."""
    if claims["typ"] != "access":
        raise InvalidToken("not an access token")
    role, jti, sid = claims["role"], claims["jti"], claims.get("sid")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidToken("unknown role")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidToken("jti must be a short string")
    for name in ("iat", "nbf"):
        _int_claim(claims[name], name, low=0, high=MAX_TIMESTAMP)
    expires = _int_claim(claims["exp"], "exp", low=0, high=MAX_TIMESTAMP)
    return AccessClaims(
        user_id=_uuid_claim(claims["sub"], "sub"),
        role=role,
        token_version=_int_claim(claims["ver"], "ver", low=0, high=MAX_TOKEN_VERSION),
        session_id=None if sid is None else _uuid_claim(sid, "sid"),
        jti=jti,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


class TokenCodec:
    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        if self._algorithm == "HS256":
            secret = settings.secret_key.get_secret_value()
            self._signing_key: Any = secret
            self._verifying_key: Any = secret
        else:
            assert settings.jwt_private_key_file
            assert settings.jwt_public_key_file
            self._signing_key = settings.jwt_private_key_file.read_text()
            self._verifying_key = settings.jwt_public_key_file.read_text()
        self._csrf_key = hashlib.sha256(
            b"csrf:" + settings.secret_key.get_secret_value().encode()
        ).digest()
        # Per codec (its keys); failures are not cached, so a bad token costs a full check.
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKEN_CACHE_SIZE)(self._verify)

    def issue_access_token(
        self,
        *,
        user_id: UUID,
        role: str,
        token_version: int,
        session_id: UUID | None,
        now: datetime,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": str(new_id()),
            "role": role,
            "typ": "access",
            "ver": token_version,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self._signing_key, algorithm=self._algorithm)

    def decode_access_token(self, token: str) -> AccessClaims:
        claims = self._verified(token)
        # The same test PyJWT applies (`exp` against the wall clock, with leeway).
        if claims.expires_at.timestamp() <= time.time() - LEEWAY_SECONDS:
            raise InvalidToken("Signature has expired")
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
            return _access_claims(claims)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
            raise InvalidToken(str(exc)) from exc

    def csrf_token_for(self, session_id: UUID) -> str:
        """A CSRF token bound to one cookie session: an HMAC of its id, so it needs no
        storage and cannot be reused for another session."""
        return hmac.new(self._csrf_key, session_id.bytes, hashlib.sha256).hexdigest()

    def check_csrf(self, session_id: UUID, presented: str) -> bool:
        # As bytes: compare_digest raises TypeError on a str that is not ASCII, and a
        # header may hold any Latin-1 character.
        expected = self.csrf_token_for(session_id).encode()
        return hmac.compare_digest(expected, presented.encode("utf-8", "replace"))

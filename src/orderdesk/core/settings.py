"""Settings from `ORDERDESK_*` environment variables and an optional `.env` file.

Every setting is documented in docs/configuration.md; keep the two in step.
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from orderdesk.core import secret_key as secret_keys
from orderdesk.core.secret_key import MIN_SECRET_KEY_LENGTH

DEFAULT_SECRET_KEY_FILE = Path(".orderdesk-secret-key")
# OWASP's minimum for argon2id: 19 MiB of memory, two passes, one lane.
ARGON2_MIN_MEMORY_KIB = 19 * 1024
ARGON2_MIN_TIME_COST = 2
STRIPE_API_BASE = "https://api.stripe.com"
# The version stripe 16.1 pins (stripe._api_version._ApiVersion.CURRENT; a test
# keeps them equal). Bump it with the SDK and the webhook endpoints' version together.
STRIPE_API_VERSION = "2026-10-28.endive"


# Old name → new name, for settings renamed in the reshape of the outbox.
RENAMED = {
    "job_max_attempts": "event_max_attempts",
    "job_lease_seconds": "event_lease_seconds",
    "job_backoff_base_seconds": "event_backoff_base_seconds",
    "job_backoff_max_seconds": "event_backoff_max_seconds",
    "job_concurrency": "handler_concurrency",
}


def _renamed(name: str, old: str) -> AliasChoices:
    """A setting read from `ORDERDESK_<NAME>`, or else from its deprecated
    `ORDERDESK_<OLD>`; `Settings(name=...)` works too (`populate_by_name`)."""
    return AliasChoices(f"orderdesk_{name}", f"orderdesk_{old}")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORDERDESK_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    env: Environment = Environment.DEVELOPMENT
    debug: bool = False
    # Before secret_key: its validator reads it. Empty secret_key means "not set".
    secret_key_file: Path = DEFAULT_SECRET_KEY_FILE
    secret_key: SecretStr = Field(default=SecretStr(""), validate_default=True)

    database_url: str = "sqlite+aiosqlite:///./orderdesk.db"
    database_read_url: str | None = None
    # Overflow connections are closed when they are returned, so a steady load above
    # the pool size would open a new connection per request: size the pool for the
    # steady load (requests hold a connection only while they query) and let bursts
    # queue for one, up to the timeout (then 503).
    database_pool_size: int = Field(default=20, ge=1)
    database_max_overflow: int = Field(default=0, ge=0)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    database_echo: bool = False

    redis_url: str | None = None
    broker_url: str | None = None
    smtp_url: str | None = None
    payment_gateway_url: str | None = None
    sentry_dsn: SecretStr | None = None

    # Payments (docs/configuration.md, "Payments"): a key alone means Stripe itself,
    # payment_gateway_url points the same adapter elsewhere (the sandbox), neither
    # means the in-process sandbox.
    stripe_api_key: SecretStr | None = None
    # Comma-separated in the environment; several while a secret is rotated.
    stripe_webhook_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    stripe_api_version: str = STRIPE_API_VERSION
    payment_gateway_timeout_seconds: float = Field(default=8.0, gt=0, le=60)
    payment_gateway_max_retries: int = Field(default=2, ge=0, le=5)
    payment_breaker_failures: int = Field(default=5, ge=1)
    payment_breaker_open_seconds: float = Field(default=30.0, gt=0)
    # Production refuses anything but Stripe itself unless this is set; never in a
    # deployment that takes real money (docs/configuration.md).
    payment_sandbox_allowed: bool = False
    # Reconciliation asks the gateway about payments left unsettled this long.
    payment_reconcile_after_seconds: int = Field(default=120, ge=1)

    @field_validator("stripe_api_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("stripe_webhook_secrets", mode="before")
    @classmethod
    def _split_webhook_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def _payment_problems(self) -> list[str]:
        """Production takes real payments from Stripe only, unless the sandbox is
        explicitly allowed (a staging copy, or an end-to-end test of a production
        build: `ORDERDESK_PAYMENT_SANDBOX_ALLOWED`)."""
        if self.payment_sandbox_allowed:
            return []
        problems = []
        if (self.payment_gateway_url or STRIPE_API_BASE).rstrip("/") != STRIPE_API_BASE:
            problems.append(f"ORDERDESK_PAYMENT_GATEWAY_URL must be {STRIPE_API_BASE} or unset")
        key = self.stripe_api_key.get_secret_value() if self.stripe_api_key else ""
        if not key:
            problems.append("ORDERDESK_STRIPE_API_KEY is not set")
        elif key.startswith(("sk_test_", "rk_test_")):
            problems.append("ORDERDESK_STRIPE_API_KEY is a test-mode key")
        if not self.stripe_webhook_secrets:
            problems.append("ORDERDESK_STRIPE_WEBHOOK_SECRETS is not set")
        return problems

    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    jwt_algorithm: Literal["HS256", "RS256", "ES256", "EdDSA"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "orderdesk"
    jwt_audience: str = "orderdesk-api"
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    email_verification_ttl_seconds: int = Field(default=48 * 3600, ge=60)
    password_reset_ttl_seconds: int = Field(default=3600, ge=60)

    argon2_memory_kib: int = Field(default=ARGON2_MIN_MEMORY_KIB, ge=ARGON2_MIN_MEMORY_KIB)
    argon2_time_cost: int = Field(default=ARGON2_MIN_TIME_COST, ge=ARGON2_MIN_TIME_COST)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Hashes computed at once; unset: one per CPU (see auth/passwords.py).
    password_hash_concurrency: int | None = Field(default=None, ge=1)
    password_min_score: int = Field(default=3, ge=0, le=4)

    signin_window_seconds: int = Field(default=15 * 60, ge=1)
    signin_max_failures_per_account: int = Field(default=5, ge=1)
    signin_max_failures_per_address: int = Field(default=20, ge=1)
    # Every attempt counts (not only failures): each one costs a hash or sends mail.
    signup_window_seconds: int = Field(default=3600, ge=1)
    signup_max_per_address: int = Field(default=20, ge=1)
    signup_max_per_email: int = Field(default=10, ge=1)
    password_reset_window_seconds: int = Field(default=3600, ge=1)
    password_reset_max_per_account: int = Field(default=3, ge=1)
    password_reset_max_per_address: int = Field(default=10, ge=1)
    verification_resend_window_seconds: int = Field(default=3600, ge=1)
    verification_resend_max_per_account: int = Field(default=3, ge=1)
    verification_resend_max_per_address: int = Field(default=10, ge=1)

    order_payment_ttl_seconds: int = Field(default=30 * 60, ge=60)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    import_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)

    # The outbox's settings. Until this release they were named ORDERDESK_JOB_*;
    # those names are still read (deprecated aliases, docs/configuration.md).
    event_max_attempts: int = Field(
        default=8, ge=1, validation_alias=_renamed("event_max_attempts", "job_max_attempts")
    )
    event_lease_seconds: int = Field(
        default=60, ge=1, validation_alias=_renamed("event_lease_seconds", "job_lease_seconds")
    )
    event_backoff_base_seconds: float = Field(
        default=2.0,
        gt=0,
        validation_alias=_renamed("event_backoff_base_seconds", "job_backoff_base_seconds"),
    )
    event_backoff_max_seconds: float = Field(
        default=600.0,
        gt=0,
        validation_alias=_renamed("event_backoff_max_seconds", "job_backoff_max_seconds"),
    )
    handler_concurrency: int = Field(
        default=8, ge=1, validation_alias=_renamed("handler_concurrency", "job_concurrency")
    )

    @model_validator(mode="before")
    @classmethod
    def _take_renamed_arguments(cls, data: Any) -> Any:
        """`Settings(job_max_attempts=3)`, the old keyword, sets the new field (as the
        old variable does) instead of being dropped as an unknown extra."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in RENAMED.items():
            if old in data:
                warnings.warn(f"{old} is renamed {new}", DeprecationWarning, stacklevel=2)
                data.setdefault(new, data.pop(old))
        return data

    relay_batch_size: int = Field(default=100, ge=1)
    relay_interval_seconds: float = Field(default=0.5, gt=0)
    relay_max_in_flight: int = Field(default=32, ge=1)
    run_scheduler: bool = True

    webhook_allow_private_targets: bool = False
    webhook_require_https: bool | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_disable_after: int = Field(default=5, ge=1)

    cookie_secure: bool | None = None
    trusted_proxies: str = "127.0.0.1"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def secure_cookies(self) -> bool:
        return self.is_production if self.cookie_secure is None else self.cookie_secure

    @property
    def webhook_https_required(self) -> bool:
        if self.webhook_require_https is None:
            return self.is_production
        return self.webhook_require_https

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, key: SecretStr, info: ValidationInfo) -> SecretStr:
        value = key.get_secret_value()
        if secret_keys.is_published(value):
            raise ValueError(
                "ORDERDESK_SECRET_KEY is a key once published in orderdesk's source; "
                "set a random one (or, outside production, unset it to have one generated)"
            )
        env, path = info.data.get("env"), info.data.get("secret_key_file")
        if value or env is None or path is None or env is Environment.PRODUCTION:
            return key  # production's missing key is refused by _check_production
        return SecretStr(secret_keys.load_or_create(path))

    @model_validator(mode="after")
    def _check_production(self) -> Self:
        if not self.is_production:
            return self
        problems = []
        key = self.secret_key.get_secret_value()
        if not key:
            problems.append("ORDERDESK_SECRET_KEY is not set; set a random one")
        elif len(key) < MIN_SECRET_KEY_LENGTH:
            problems.append(
                f"ORDERDESK_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters"
            )
        if self.debug:
            problems.append("ORDERDESK_DEBUG must be off")
        if self.database_echo:
            problems.append("ORDERDESK_DATABASE_ECHO must be off (it logs query parameters)")
        problems.extend(self._payment_problems())
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _check_jwt_keys(self) -> Self:
        asymmetric = self.jwt_algorithm != "HS256"
        if asymmetric and not (self.jwt_private_key_file and self.jwt_public_key_file):
            raise ValueError(
                f"ORDERDESK_JWT_ALGORITHM={self.jwt_algorithm} needs "
                "ORDERDESK_JWT_PRIVATE_KEY_FILE and ORDERDESK_JWT_PUBLIC_KEY_FILE"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()

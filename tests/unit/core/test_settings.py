"""Settings: MVP-tier defaults, `ORDERDESK_*` variables, and what production refuses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orderdesk.core.settings import Environment, Settings

GOOD_KEY = "k" * 16 + "0123456789abcdefghij"
# What production needs besides the secret key: Stripe itself (see the payments
# settings tests for what it refuses).
STRIPE = {"stripe_api_key": "sk_live_" + "x" * 24, "stripe_webhook_secrets": "whsec_" + "y" * 32}
# The key that was once the default in the source, so anyone could sign with it.
PUBLISHED_KEY = "orderdesk-development-secret-key-do-not-use-in-production"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets itself: no ORDERDESK_* from the shell running the suite,
    and a fresh working directory, where a generated secret key file would go."""
    for name in list(os.environ):
        if name.startswith("ORDERDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**values)
    return str(caught.value)


# --- production refusals ---------------------------------------------------------------


def test_production_refuses_a_missing_secret_key() -> None:
    message = refusal(env="production")

    assert "ORDERDESK_SECRET_KEY is not set" in message


@pytest.mark.parametrize(
    ("secret_key", "expected"),
    [
        pytest.param("", "ORDERDESK_SECRET_KEY is not set", id="empty-secret-key"),
        pytest.param("short", "at least 32 characters", id="short-secret-key"),
    ],
)
def test_production_refuses_a_bad_secret_key_from_environment_variables(
    monkeypatch: pytest.MonkeyPatch, secret_key: str, expected: str
) -> None:
    monkeypatch.setenv("ORDERDESK_ENV", "production")
    monkeypatch.setenv("ORDERDESK_SECRET_KEY", secret_key)

    with pytest.raises(ValidationError, match=expected):
        settings()


def test_production_never_reads_or_makes_a_secret_key_file(tmp_path: Path) -> None:
    (tmp_path / ".orderdesk-secret-key").write_text(GOOD_KEY)

    message = refusal(env="production")

    assert "ORDERDESK_SECRET_KEY is not set" in message


def test_production_refuses_the_once_published_key() -> None:
    message = refusal(env="production", secret_key=PUBLISHED_KEY)

    assert "once published" in message


@pytest.mark.parametrize("env", ["development", "test"])
def test_every_environment_refuses_the_once_published_key(env: str) -> None:
    message = refusal(env=env, secret_key=PUBLISHED_KEY)

    assert "once published" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"secret_key": "too-short-a-key"},
            "ORDERDESK_SECRET_KEY must be at least 32 characters",
            id="short-secret-key",
        ),
        pytest.param(
            {"secret_key": GOOD_KEY, "debug": True}, "ORDERDESK_DEBUG must be off", id="debug"
        ),
        pytest.param(
            {"secret_key": GOOD_KEY, "database_echo": True},
            "ORDERDESK_DATABASE_ECHO must be off",
            id="database-echo",
        ),
    ],
)
def test_production_refuses_an_unsafe_setting(overrides: dict[str, Any], expected: str) -> None:
    message = refusal(env="production", **overrides)

    assert expected in message


def test_production_names_every_problem_at_once() -> None:
    message = refusal(env="production", secret_key="short", debug=True)

    assert "at least 32 characters" in message
    assert "ORDERDESK_DEBUG" in message


def test_production_starts_with_a_long_random_key_and_no_debug() -> None:
    configured = settings(env="production", secret_key=GOOD_KEY, **STRIPE)

    assert configured.is_production
    assert configured.secret_key.get_secret_value() == GOOD_KEY


def test_development_accepts_a_short_key_and_debug() -> None:
    configured = settings(secret_key="dev", debug=True)

    assert configured.secret_key.get_secret_value() == "dev"
    assert configured.debug is True


# --- defaults --------------------------------------------------------------------------


def test_defaults_are_the_sqlite_mvp_tier() -> None:
    configured = settings()

    assert configured.env is Environment.DEVELOPMENT
    assert configured.database_url.startswith("sqlite+aiosqlite://")
    assert configured.is_sqlite
    assert configured.database_read_url is None
    assert configured.redis_url is None
    assert configured.broker_url is None
    assert configured.smtp_url is None
    assert configured.payment_gateway_url is None
    assert configured.sentry_dsn is None
    assert configured.log_format == "console"
    assert configured.debug is False


def test_defaults_hash_passwords_with_at_least_owasps_argon2id_parameters() -> None:
    configured = settings()

    assert configured.argon2_memory_kib >= 19 * 1024
    assert configured.argon2_time_cost >= 2


def test_argon2_parameters_below_owasps_minimum_are_refused() -> None:
    with pytest.raises(ValidationError, match="argon2_memory_kib"):
        settings(argon2_memory_kib=1024)


def test_cookies_are_secure_in_production_by_default() -> None:
    assert settings(env="production", secret_key=GOOD_KEY, **STRIPE).secure_cookies is True
    assert settings().secure_cookies is False


# --- environment variables -------------------------------------------------------------


def test_orderdesk_prefixed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERDESK_DATABASE_URL", "postgresql+asyncpg://app@db.internal/orders")
    monkeypatch.setenv("ORDERDESK_LOG_FORMAT", "json")
    monkeypatch.setenv("ORDERDESK_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("ORDERDESK_BROKER_URL", "redis://broker.internal:6379/0")

    configured = settings()

    assert configured.database_url == "postgresql+asyncpg://app@db.internal/orders"
    assert configured.is_sqlite is False
    assert configured.log_format == "json"
    assert configured.max_body_bytes == 2048
    assert configured.broker_url == "redis://broker.internal:6379/0"


def test_the_secret_key_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERDESK_ENV", "production")
    monkeypatch.setenv("ORDERDESK_SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("ORDERDESK_STRIPE_API_KEY", STRIPE["stripe_api_key"])
    monkeypatch.setenv("ORDERDESK_STRIPE_WEBHOOK_SECRETS", STRIPE["stripe_webhook_secrets"])

    configured = settings()

    assert configured.is_production
    assert configured.secret_key.get_secret_value() == GOOD_KEY


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://elsewhere/db")
    monkeypatch.setenv("LOG_FORMAT", "json")

    configured = settings()

    assert configured.is_sqlite
    assert configured.log_format == "console"


def test_an_invalid_value_in_a_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERDESK_LOG_FORMAT", "xml")

    with pytest.raises(ValidationError, match="log_format"):
        settings()


def test_the_secret_key_is_not_shown_in_the_settings_repr() -> None:
    configured = settings(secret_key=GOOD_KEY)

    assert GOOD_KEY not in repr(configured)


# --- signing keys ----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_an_asymmetric_jwt_algorithm_without_key_files_is_refused(algorithm: str) -> None:
    message = refusal(jwt_algorithm=algorithm)

    assert f"ORDERDESK_JWT_ALGORITHM={algorithm}" in message
    assert "ORDERDESK_JWT_PRIVATE_KEY_FILE" in message


def test_an_asymmetric_jwt_algorithm_with_only_a_private_key_is_refused(tmp_path: Path) -> None:
    message = refusal(jwt_algorithm="RS256", jwt_private_key_file=tmp_path / "private.pem")

    assert "ORDERDESK_JWT_PUBLIC_KEY_FILE" in message


def test_an_asymmetric_jwt_algorithm_with_both_key_files_is_accepted(tmp_path: Path) -> None:
    configured = settings(
        jwt_algorithm="RS256",
        jwt_private_key_file=tmp_path / "private.pem",
        jwt_public_key_file=tmp_path / "public.pem",
    )

    assert configured.jwt_algorithm == "RS256"


def test_an_unknown_jwt_algorithm_is_refused() -> None:
    with pytest.raises(ValidationError, match="jwt_algorithm"):
        settings(jwt_algorithm="none")

"""Payment settings: defaults, `ORDERDESK_*` variables (webhook secrets as a comma
list), what production refuses, and how the adapter's config is derived."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import stripe
from pydantic import ValidationError

from orderdesk.core.settings import STRIPE_API_BASE, STRIPE_API_VERSION, Settings
from orderdesk.payments.stripe_gateway import SANDBOX_API_KEY, StripeConfig

GOOD_KEY = "k" * 16 + "0123456789abcdefghij"
LIVE_KEY = "sk_live_51Hx0123456789abcdefghijklmnop"
SECRET = "whsec_live_0123456789abcdef"
# Everything a production process needs for payments; a test removes one thing.
PRODUCTION = {
    "env": "production",
    "secret_key": GOOD_KEY,
    "stripe_api_key": LIVE_KEY,
    "stripe_webhook_secrets": [SECRET],
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets itself, in a fresh working directory."""
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


# --- defaults and variables -----------------------------------------------------------


def test_defaults_point_at_the_sandbox_with_the_sdks_api_version() -> None:
    configured = settings()

    assert configured.payment_gateway_url is None
    assert configured.stripe_api_key is None
    assert configured.stripe_webhook_secrets == ()
    assert configured.stripe_api_version == STRIPE_API_VERSION
    assert configured.payment_gateway_timeout_seconds == 8.0
    assert configured.payment_gateway_max_retries == 2
    assert configured.payment_breaker_failures == 5
    assert configured.payment_breaker_open_seconds == 30.0


def test_the_pinned_api_version_is_the_one_the_locked_sdk_pins() -> None:
    assert stripe._api_version._ApiVersion.CURRENT == STRIPE_API_VERSION


def test_payment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERDESK_STRIPE_API_KEY", LIVE_KEY)
    monkeypatch.setenv("ORDERDESK_STRIPE_WEBHOOK_SECRETS", "whsec_new, whsec_old,")
    monkeypatch.setenv("ORDERDESK_PAYMENT_GATEWAY_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("ORDERDESK_PAYMENT_GATEWAY_MAX_RETRIES", "0")
    monkeypatch.setenv("ORDERDESK_PAYMENT_BREAKER_FAILURES", "3")
    monkeypatch.setenv("ORDERDESK_PAYMENT_BREAKER_OPEN_SECONDS", "10")

    configured = settings()

    assert configured.stripe_api_key is not None
    assert configured.stripe_api_key.get_secret_value() == LIVE_KEY
    secrets = [s.get_secret_value() for s in configured.stripe_webhook_secrets]
    assert secrets == ["whsec_new", "whsec_old"]
    assert configured.payment_gateway_timeout_seconds == 2.5
    assert configured.payment_gateway_max_retries == 0
    assert configured.payment_breaker_failures == 3
    assert configured.payment_breaker_open_seconds == 10.0


def test_an_empty_key_variable_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERDESK_STRIPE_API_KEY", "")

    assert settings().stripe_api_key is None


def test_keys_and_webhook_secrets_are_not_shown_in_the_repr() -> None:
    configured = settings(stripe_api_key=LIVE_KEY, stripe_webhook_secrets=[SECRET])

    assert LIVE_KEY not in repr(configured)
    assert SECRET not in repr(configured)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("payment_gateway_timeout_seconds", 0, id="zero-timeout"),
        pytest.param("payment_gateway_max_retries", -1, id="negative-retries"),
        pytest.param("payment_breaker_failures", 0, id="zero-failures"),
        pytest.param("payment_breaker_open_seconds", 0, id="zero-open-seconds"),
    ],
)
def test_a_payment_setting_out_of_range_is_refused(field: str, value: float) -> None:
    assert field in refusal(**{field: value})


# --- production -------------------------------------------------------------------------


def test_production_starts_with_a_live_key_and_a_webhook_secret() -> None:
    configured = settings(**PRODUCTION)

    assert configured.is_production


@pytest.mark.parametrize("url", [STRIPE_API_BASE, STRIPE_API_BASE + "/"])
def test_production_accepts_stripes_own_base_url(url: str) -> None:
    assert settings(**PRODUCTION, payment_gateway_url=url).payment_gateway_url == url


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"payment_gateway_url": "http://127.0.0.1:8420"},
            f"ORDERDESK_PAYMENT_GATEWAY_URL must be {STRIPE_API_BASE}",
            id="sandbox-url",
        ),
        pytest.param(
            {"stripe_api_key": None}, "ORDERDESK_STRIPE_API_KEY is not set", id="missing-key"
        ),
        pytest.param(
            {"stripe_api_key": "sk_test_51Hx0123"},
            "ORDERDESK_STRIPE_API_KEY is a test-mode key",
            id="secret-test-key",
        ),
        pytest.param(
            {"stripe_api_key": "rk_test_51Hx0123"},
            "ORDERDESK_STRIPE_API_KEY is a test-mode key",
            id="restricted-test-key",
        ),
        pytest.param(
            {"stripe_webhook_secrets": []},
            "ORDERDESK_STRIPE_WEBHOOK_SECRETS is not set",
            id="no-webhook-secret",
        ),
    ],
)
def test_production_refuses_an_unsafe_payment_setting(
    overrides: dict[str, Any], expected: str
) -> None:
    message = refusal(**{**PRODUCTION, **overrides})

    assert "refusing to start in production" in message
    assert expected in message


def test_production_names_every_payment_problem_at_once() -> None:
    message = refusal(
        env="production", secret_key=GOOD_KEY, payment_gateway_url="http://sandbox:8420"
    )

    assert "ORDERDESK_PAYMENT_GATEWAY_URL" in message
    assert "ORDERDESK_STRIPE_API_KEY is not set" in message
    assert "ORDERDESK_STRIPE_WEBHOOK_SECRETS is not set" in message


def test_production_configuring_no_payment_setting_is_refused() -> None:
    # Neither a key nor a URL would mean the in-process sandbox: never in production.
    message = refusal(env="production", secret_key=GOOD_KEY)

    assert "ORDERDESK_STRIPE_API_KEY is not set" in message
    assert "ORDERDESK_STRIPE_WEBHOOK_SECRETS is not set" in message


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="in-process-sandbox"),
        pytest.param(
            {"payment_gateway_url": "http://127.0.0.1:8420", "stripe_api_key": "sk_test_x"},
            id="sandbox-process",
        ),
    ],
)
def test_production_takes_the_sandbox_only_when_explicitly_allowed(
    overrides: dict[str, Any],
) -> None:
    configured = settings(
        env="production", secret_key=GOOD_KEY, payment_sandbox_allowed=True, **overrides
    )

    assert configured.is_production


def test_development_accepts_a_test_key_and_a_sandbox_url() -> None:
    configured = settings(stripe_api_key="sk_test_x", payment_gateway_url="http://127.0.0.1:1")

    assert configured.payment_gateway_url == "http://127.0.0.1:1"


# --- the adapter's config -------------------------------------------------------------


def test_a_key_alone_means_stripe_itself() -> None:
    config = StripeConfig.from_settings(settings(stripe_api_key=LIVE_KEY))

    assert (config.base_url, config.api_key) == (STRIPE_API_BASE, LIVE_KEY)


def test_a_url_points_the_adapter_at_that_base_with_the_sandbox_key_when_none_is_set() -> None:
    config = StripeConfig.from_settings(settings(payment_gateway_url="http://127.0.0.1:8420/"))

    assert (config.base_url, config.api_key) == ("http://127.0.0.1:8420", SANDBOX_API_KEY)


def test_the_config_carries_every_payment_setting() -> None:
    config = StripeConfig.from_settings(
        settings(
            stripe_api_key="sk_test_x",
            stripe_webhook_secrets=["whsec_a", "whsec_b"],
            payment_gateway_timeout_seconds=3,
            payment_gateway_max_retries=1,
            payment_breaker_failures=4,
            payment_breaker_open_seconds=12,
        ),
        base_url="http://sandbox.internal",
    )

    assert config.base_url == "http://sandbox.internal"
    assert config.webhook_secrets == ("whsec_a", "whsec_b")
    assert (config.timeout_seconds, config.max_retries) == (3, 1)
    assert (config.breaker_failures, config.breaker_open_seconds) == (4, 12)
    assert config.api_version == STRIPE_API_VERSION
    assert "sk_test_x" not in repr(config)


def test_neither_key_nor_url_needs_the_in_process_sandboxs_address() -> None:
    with pytest.raises(ValueError, match="ORDERDESK_STRIPE_API_KEY"):
        StripeConfig.from_settings(settings())

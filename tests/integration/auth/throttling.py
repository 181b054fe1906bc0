"""What the action-throttling tests share (in memory and through Redis): the limits
they configure, and a sign-up whose answer they judge."""

from __future__ import annotations

from typing import Any

import httpx

from orderdesk.core.settings import Settings
from tests.factories import STRONG_PASSWORD, unique_email
from tests.helpers import make_settings

REGISTER = "/api/v1/auth/register"
RESET = "/api/v1/auth/password-reset"
RESEND = "/api/v1/auth/verify-email/resend"
PROBLEM_JSON = "application/problem+json"
WINDOW_SECONDS = 600
SIGNUP_PER_ADDRESS, SIGNUP_PER_EMAIL = 3, 2
RESET_PER_ACCOUNT, RESET_PER_ADDRESS = 2, 4
RESEND_PER_ACCOUNT, RESEND_PER_ADDRESS = 2, 3


def limited(database_url: str, **overrides: Any) -> Settings:
    return make_settings(
        database_url,
        signup_window_seconds=WINDOW_SECONDS,
        signup_max_per_address=SIGNUP_PER_ADDRESS,
        signup_max_per_email=SIGNUP_PER_EMAIL,
        password_reset_window_seconds=WINDOW_SECONDS,
        password_reset_max_per_account=RESET_PER_ACCOUNT,
        password_reset_max_per_address=RESET_PER_ADDRESS,
        verification_resend_window_seconds=WINDOW_SECONDS,
        verification_resend_max_per_account=RESEND_PER_ACCOUNT,
        verification_resend_max_per_address=RESEND_PER_ADDRESS,
        **overrides,
    )


async def sign_up(
    client: httpx.AsyncClient, email: str | None = None, **body: Any
) -> httpx.Response:
    payload = {"email": email or unique_email(), "password": STRONG_PASSWORD, "full_name": "T"}
    return await client.post(REGISTER, json={**payload, **body})


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "too_many_requests"
    assert 0 < int(response.headers["retry-after"]) <= WINDOW_SECONDS

"""Email verification and password reset: single-use, expiring tokens sent by mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import col

from orderdesk.auth.models import OneTimeToken
from orderdesk.auth.tokens import hash_token
from orderdesk.container import Container
from tests.factories import STRONG_PASSWORD, bearer, register, sign_in, unique_email
from tests.fakes import RecordingMailer

VERIFY = "/api/v1/auth/verify-email"
RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSWORD = "amber-lighthouse-tractor-92"


async def expire(container: Container, token: str) -> None:
    async with container.database.sessions() as session:
        await session.exec(
            sa.update(OneTimeToken)
            .where(col(OneTimeToken.token_hash) == hash_token(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()


async def email_verified(client: httpx.AsyncClient, email: str) -> bool:
    tokens = await sign_in(client, email)
    verified: bool = (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()[
        "email_verified"
    ]
    return verified


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_token"
    assert [error["field"] for error in body["errors"]] == ["token"]


async def request_reset(client: httpx.AsyncClient, mailer: RecordingMailer, email: str) -> str:
    response = await client.post(RESET, json={"email": email})
    assert response.status_code == 202
    return mailer.last_token("reset_password")


async def confirm(client: httpx.AsyncClient, token: str, new_password: str) -> httpx.Response:
    return await client.post(CONFIRM, json={"token": token, "new_password": new_password})


# --- email verification -------------------------------------------------------------------


async def test_registration_mails_a_verification_token(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)

    messages = mailer.of_kind("verify_email")

    assert [message.to for message in messages] == [user["email"]]
    assert len(mailer.last_token("verify_email")) >= 32


async def test_a_new_account_is_not_verified(client: httpx.AsyncClient) -> None:
    user = await register(client)

    assert user["email_verified"] is False
    assert not await email_verified(client, user["email"])


async def test_the_mailed_token_verifies_the_email(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)

    response = await client.post(VERIFY, json={"token": mailer.last_token("verify_email")})

    assert response.status_code == 204
    assert await email_verified(client, user["email"])


async def test_a_verification_token_works_only_once(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    await register(client)
    token = mailer.last_token("verify_email")
    assert (await client.post(VERIFY, json={"token": token})).status_code == 204

    assert_invalid_token(await client.post(VERIFY, json={"token": token}))


async def test_an_expired_verification_token_is_refused(
    client: httpx.AsyncClient, container: Container, mailer: RecordingMailer
) -> None:
    user = await register(client)
    token = mailer.last_token("verify_email")
    await expire(container, token)

    assert_invalid_token(await client.post(VERIFY, json={"token": token}))
    assert not await email_verified(client, user["email"])


async def test_an_unknown_verification_token_is_refused(client: httpx.AsyncClient) -> None:
    assert_invalid_token(await client.post(VERIFY, json={"token": "x" * 43}))


async def test_a_resent_verification_token_replaces_the_earlier_one(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    first = mailer.last_token("verify_email")
    tokens = await sign_in(client, user["email"])
    resent = await client.post("/api/v1/auth/verify-email/resend", headers=bearer(tokens))
    assert resent.status_code == 202

    assert_invalid_token(await client.post(VERIFY, json={"token": first}))
    second = mailer.last_token("verify_email")
    assert second != first
    assert (await client.post(VERIFY, json={"token": second})).status_code == 204


# --- password reset -------------------------------------------------------------------------


async def test_a_reset_request_answers_the_same_for_known_and_unknown_emails(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)

    known = await client.post(RESET, json={"email": user["email"]})
    unknown = await client.post(RESET, json={"email": unique_email("nobody")})

    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content


async def test_a_reset_request_for_an_account_mails_it_a_token(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)

    await client.post(RESET, json={"email": user["email"]})

    assert [message.to for message in mailer.of_kind("reset_password")] == [user["email"]]


async def test_a_reset_request_for_an_unknown_email_mails_nothing(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    await client.post(RESET, json={"email": unique_email("nobody")})

    assert mailer.of_kind("reset_password") == []


async def test_a_weak_new_password_is_refused_naming_the_field(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    token = await request_reset(client, mailer, user["email"])

    response = await confirm(client, token, "password123")

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == ["new_password"]


async def test_a_refused_weak_password_does_not_use_up_the_token(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    token = await request_reset(client, mailer, user["email"])
    assert (await confirm(client, token, "password123")).status_code == 422

    response = await confirm(client, token, NEW_PASSWORD)

    assert response.status_code == 204, response.text


async def test_a_reset_sets_the_new_password_and_retires_the_old_one(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    token = await request_reset(client, mailer, user["email"])

    assert (await confirm(client, token, NEW_PASSWORD)).status_code == 204

    old = await client.post(
        "/api/v1/auth/token", data={"username": user["email"], "password": STRONG_PASSWORD}
    )
    assert old.status_code == 401
    assert old.json()["code"] == "invalid_credentials"
    await sign_in(client, user["email"], NEW_PASSWORD)


async def test_a_reset_revokes_every_refresh_token(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    sessions = [await sign_in(client, user["email"]) for _ in range(2)]
    token = await request_reset(client, mailer, user["email"])

    await confirm(client, token, NEW_PASSWORD)

    for tokens in sessions:
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_refresh_token"


async def test_a_reset_invalidates_outstanding_access_tokens(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    tokens = await sign_in(client, user["email"])
    token = await request_reset(client, mailer, user["email"])

    await confirm(client, token, NEW_PASSWORD)

    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401


async def test_a_reset_token_works_only_once(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    token = await request_reset(client, mailer, user["email"])
    assert (await confirm(client, token, NEW_PASSWORD)).status_code == 204

    assert_invalid_token(await confirm(client, token, "sapphire-orchard-bicycle-15"))


async def test_an_expired_reset_token_is_refused(
    client: httpx.AsyncClient, container: Container, mailer: RecordingMailer
) -> None:
    user = await register(client)
    token = await request_reset(client, mailer, user["email"])
    await expire(container, token)

    assert_invalid_token(await confirm(client, token, NEW_PASSWORD))
    await sign_in(client, user["email"], STRONG_PASSWORD)


async def test_a_verification_token_cannot_reset_a_password(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    await register(client)

    response = await confirm(client, mailer.last_token("verify_email"), NEW_PASSWORD)

    assert_invalid_token(response)


async def test_a_reset_proves_the_email_address(
    client: httpx.AsyncClient, mailer: RecordingMailer
) -> None:
    user = await register(client)
    token = await request_reset(client, mailer, user["email"])

    await confirm(client, token, NEW_PASSWORD)

    tokens = await sign_in(client, user["email"], NEW_PASSWORD)
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.json()["email_verified"] is True

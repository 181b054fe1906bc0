"""Cookie sessions for browsers: HttpOnly, SameSite=Lax cookies (Secure outside
development and tests), a CSRF token on every unsafe request, and sign-out."""

from __future__ import annotations

import secrets

import httpx

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from tests.factories import STRONG_PASSWORD, bearer, register, sign_in
from tests.helpers import make_container, make_settings

SESSION = "/api/v1/auth/session"
SESSION_REFRESH = "/api/v1/auth/session/refresh"
ME = "/api/v1/users/me"
ACCESS_COOKIE = "orderdesk_access"
REFRESH_COOKIE = "orderdesk_refresh"
CSRF_HEADER = "X-CSRF-Token"

Cookie = dict[str, str | bool]


def set_cookies(response: httpx.Response) -> dict[str, Cookie]:
    """The Set-Cookie headers of a response, by name: the value under "value" and each
    attribute under its lower-cased name (flags as True)."""
    cookies: dict[str, Cookie] = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        cookie: Cookie = {"value": value.strip('"')}
        for attribute in attributes:
            key, has_value, attribute_value = attribute.partition("=")
            cookie[key.strip().lower()] = attribute_value.strip() if has_value else True
        cookies[name] = cookie
    return cookies


async def start_session(client: httpx.AsyncClient, email: str) -> httpx.Response:
    response = await client.post(SESSION, data={"username": email, "password": STRONG_PASSWORD})
    assert response.status_code == 200, response.text
    return response


async def signed_in_browser(client: httpx.AsyncClient) -> str:
    """Register and start a cookie session in `client`'s cookie jar; the CSRF token."""
    user = await register(client)
    csrf: str = (await start_session(client, user["email"])).json()["csrf_token"]
    return csrf


async def session_cookies_from(
    settings: Settings, database: Database, hasher: PasswordHasher
) -> dict[str, Cookie]:
    """Sign in to an app built on `settings`; the session cookies it sets."""
    app = create_app(settings, container=make_container(settings, database, hasher))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        user = await register(client)
        return set_cookies(await start_session(client, user["email"]))


# --- signing in -----------------------------------------------------------------------


async def test_a_session_sign_in_answers_only_a_csrf_token(client: httpx.AsyncClient) -> None:
    user = await register(client)

    response = await start_session(client, user["email"])

    assert set(response.json()) == {"csrf_token"}
    assert len(response.json()["csrf_token"]) >= 32


async def test_a_session_sign_in_sets_httponly_samesite_lax_cookies(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)

    cookies = set_cookies(await start_session(client, user["email"]))

    assert set(cookies) == {ACCESS_COOKIE, REFRESH_COOKIE}
    for cookie in cookies.values():
        assert cookie.get("httponly") is True
        assert str(cookie.get("samesite")).lower() == "lax"


async def test_the_refresh_cookie_is_sent_only_to_the_auth_routes(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)

    cookies = set_cookies(await start_session(client, user["email"]))

    assert cookies[ACCESS_COOKIE]["path"] == "/"
    assert cookies[REFRESH_COOKIE]["path"] == "/api/v1/auth"


async def test_session_cookies_are_not_secure_in_the_test_environment(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)

    cookies = set_cookies(await start_session(client, user["email"]))

    assert not any("secure" in cookie for cookie in cookies.values())


async def test_session_cookies_are_secure_when_configured(
    settings: Settings, database: Database, hasher: PasswordHasher
) -> None:
    secure_settings = make_settings(settings.database_url, cookie_secure=True)

    cookies = await session_cookies_from(secure_settings, database, hasher)

    assert all(cookie.get("secure") is True for cookie in cookies.values())


async def test_session_cookies_are_secure_in_production(
    settings: Settings, database: Database, hasher: PasswordHasher
) -> None:
    production = make_settings(
        settings.database_url,
        env="production",
        secret_key=secrets.token_urlsafe(36),
        payment_sandbox_allowed=True,
    )

    cookies = await session_cookies_from(production, database, hasher)

    assert all(cookie.get("secure") is True for cookie in cookies.values())


async def test_a_wrong_password_sets_no_cookies(client: httpx.AsyncClient) -> None:
    user = await register(client)

    response = await client.post(
        SESSION, data={"username": user["email"], "password": "not-" + STRONG_PASSWORD}
    )

    assert response.status_code == 401
    assert set_cookies(response) == {}


# --- using the session -------------------------------------------------------------------


async def test_the_session_cookie_alone_authenticates_a_read(client: httpx.AsyncClient) -> None:
    user = await register(client)
    await start_session(client, user["email"])

    response = await client.get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == user["id"]


async def test_an_unsafe_request_with_the_cookie_but_no_csrf_token_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await signed_in_browser(client)

    response = await client.patch(ME, json={"full_name": "Mallory"})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "csrf_failed"
    assert (await client.get(ME)).json()["full_name"] != "Mallory"


async def test_an_unsafe_request_with_a_wrong_csrf_token_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await signed_in_browser(client)

    response = await client.patch(
        ME, json={"full_name": "Mallory"}, headers={CSRF_HEADER: "0" * 64}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


async def test_a_csrf_token_from_another_session_is_refused(client: httpx.AsyncClient) -> None:
    user = await register(client)
    first_csrf = (await start_session(client, user["email"])).json()["csrf_token"]
    await start_session(client, user["email"])  # the jar now holds the second session

    response = await client.patch(
        ME, json={"full_name": "Mallory"}, headers={CSRF_HEADER: first_csrf}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


async def test_an_unsafe_request_with_the_right_csrf_token_succeeds(
    client: httpx.AsyncClient,
) -> None:
    csrf = await signed_in_browser(client)

    response = await client.patch(ME, json={"full_name": "Renamed"}, headers={CSRF_HEADER: csrf})

    assert response.status_code == 200
    assert response.json()["full_name"] == "Renamed"


async def test_bearer_requests_need_no_csrf_token(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await sign_in(client, user["email"])
    assert not client.cookies

    response = await client.patch(ME, json={"full_name": "Renamed"}, headers=bearer(tokens))

    assert response.status_code == 200
    assert response.json()["full_name"] == "Renamed"


# --- refreshing the session ------------------------------------------------------------


async def test_a_session_refresh_with_the_csrf_token_rotates_the_cookies(
    client: httpx.AsyncClient,
) -> None:
    csrf = await signed_in_browser(client)
    old_refresh = client.cookies.get(REFRESH_COOKIE)

    response = await client.post(SESSION_REFRESH, headers={CSRF_HEADER: csrf})

    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS_COOKIE, REFRESH_COOKIE}
    assert cookies[REFRESH_COOKIE]["value"] != old_refresh
    assert (await client.get(ME)).status_code == 200


async def test_a_session_refresh_without_the_csrf_token_is_refused_and_rotates_nothing(
    client: httpx.AsyncClient,
) -> None:
    csrf = await signed_in_browser(client)

    refused = await client.post(SESSION_REFRESH)

    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    # The refusal rolled the rotation back, so the same refresh cookie still works.
    assert (await client.post(SESSION_REFRESH, headers={CSRF_HEADER: csrf})).status_code == 200


async def test_a_session_refresh_without_a_refresh_cookie_is_a_401(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(SESSION_REFRESH, headers={CSRF_HEADER: "0" * 64})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


# --- signing out ------------------------------------------------------------------------


async def test_signing_out_clears_both_cookies(client: httpx.AsyncClient) -> None:
    csrf = await signed_in_browser(client)

    response = await client.delete(SESSION, headers={CSRF_HEADER: csrf})

    assert response.status_code == 204
    cleared = set_cookies(response)
    assert set(cleared) == {ACCESS_COOKIE, REFRESH_COOKIE}
    for cookie in cleared.values():
        assert cookie["value"] == ""
        assert cookie["max-age"] == "0"
    assert not client.cookies
    assert (await client.get(ME)).status_code == 401


async def test_signing_out_revokes_the_sessions_refresh_token(client: httpx.AsyncClient) -> None:
    csrf = await signed_in_browser(client)
    refresh_token = client.cookies.get(REFRESH_COOKIE)
    assert refresh_token

    await client.delete(SESSION, headers={CSRF_HEADER: csrf})

    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_signing_out_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    csrf = await signed_in_browser(client)

    response = await client.delete(SESSION)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert (await client.post(SESSION_REFRESH, headers={CSRF_HEADER: csrf})).status_code == 200

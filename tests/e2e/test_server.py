"""The installed `orderdesk` command end to end: migrate, seed, serve, and operator
commands, spoken to over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory

from orderdesk.core import migrations
from tests.e2e.conftest import Server
from tests.factories import STRONG_PASSWORD, unique_email

pytestmark = pytest.mark.e2e


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        yield client


def sign_in(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def admin_headers(http: httpx.Client, server: Server) -> dict[str, str]:
    return sign_in(http, server.admin_email, server.admin_password)


def register_customer(http: httpx.Client) -> dict[str, Any]:
    response = http.post(
        "/api/v1/auth/register",
        json={"email": unique_email("e2e"), "password": STRONG_PASSWORD, "full_name": "E2E"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def all_users(http: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        response = http.get("/api/v1/users", params=params, headers=headers)
        assert response.status_code == 200, response.text
        users.extend(response.json()["items"])
        if response.json()["next_cursor"] is None:
            return users
        params["cursor"] = response.json()["next_cursor"]


# --- HTTP ------------------------------------------------------------------------------


def test_the_seeded_admin_signs_in_as_an_admin(http: httpx.Client, server: Server) -> None:
    response = http.get("/api/v1/users/me", headers=admin_headers(http, server))

    assert response.status_code == 200
    assert response.json()["email"] == server.admin_email
    assert response.json()["role"] == "admin"


def test_a_visitor_registers_as_a_customer(http: httpx.Client) -> None:
    customer = register_customer(http)

    assert customer["role"] == "customer"


def test_a_customer_is_refused_the_user_list(http: httpx.Client) -> None:
    customer = register_customer(http)
    headers = sign_in(http, customer["email"], STRONG_PASSWORD)

    response = http.get("/api/v1/users", headers=headers)

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_the_admin_lists_users_including_a_new_customer(http: httpx.Client, server: Server) -> None:
    customer = register_customer(http)

    users = all_users(http, admin_headers(http, server))

    ids = {user["id"] for user in users}
    assert customer["id"] in ids
    assert server.admin_email in {user["email"] for user in users}


def test_the_request_id_is_echoed(http: httpx.Client) -> None:
    rid = f"e2e-{uuid.uuid4().hex}"

    response = http.get("/health/live", headers={"X-Request-ID": rid})

    assert response.headers["x-request-id"] == rid


def test_the_request_id_appears_in_the_servers_json_log(http: httpx.Client, server: Server) -> None:
    rid = f"e2e-{uuid.uuid4().hex}"

    http.get("/health/live", headers={"X-Request-ID": rid})

    record = server.wait_for_log(request_id=rid, event="request")
    assert record["path"] == "/health/live"
    assert record["status"] == 200


def test_the_access_log_names_the_signed_in_user(http: httpx.Client, server: Server) -> None:
    headers = admin_headers(http, server)
    admin_id = http.get("/api/v1/users/me", headers=headers).json()["id"]
    rid = f"e2e-{uuid.uuid4().hex}"

    http.get("/api/v1/users/me", headers={**headers, "X-Request-ID": rid})

    record = server.wait_for_log(request_id=rid, event="request")
    assert record["user_id"] == admin_id


def test_every_server_log_line_is_json(http: httpx.Client, server: Server) -> None:
    http.get("/api/v1/no-such-route")

    records = server.log_records()

    assert records
    assert all("event" in record and "level" in record for record in records)


def test_the_server_answers_errors_as_problems(http: httpx.Client) -> None:
    response = http.post("/api/v1/auth/register", json={})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_failed"


# --- the command line ------------------------------------------------------------------


def test_seed_demo_a_second_time_adds_nothing(http: httpx.Client, server: Server) -> None:
    headers = admin_headers(http, server)
    before = all_users(http, headers)

    result = server.cli("seed-demo")

    assert result.returncode == 0, result.stderr
    assert "demo data not added" in result.stdout
    assert "password" not in result.stdout
    assert len(all_users(http, headers)) == len(before)


def test_migrate_current_prints_the_head_revision(server: Server) -> None:
    head = ScriptDirectory.from_config(migrations.alembic_config("")).get_current_head()

    result = server.cli("migrate", "current")

    assert result.returncode == 0, result.stderr
    assert f"{head} (head)" in result.stdout


def test_help_lists_the_commands(server: Server) -> None:
    result = server.cli("--help")

    assert result.returncode == 0
    for command in ("serve", "migrate", "create-admin", "seed-demo"):
        assert command in result.stdout


def test_create_admin_with_a_weak_password_fails_readably(
    http: httpx.Client, server: Server
) -> None:
    email = unique_email("weak-admin")

    result = server.cli("create-admin", "--email", email, "--password", "password123")

    assert result.returncode != 0
    assert "too easy to guess" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    users = all_users(http, admin_headers(http, server))
    assert email not in {user["email"] for user in users}


def test_create_admin_with_an_invalid_email_and_short_password_fails_readably(
    server: Server,
) -> None:
    result = server.cli("create-admin", "--email", "x", "--password", "y")

    assert result.returncode != 0
    assert "could not create the admin" in result.stdout
    assert "email" in result.stdout
    assert "password" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_create_admin_creates_an_admin_who_can_sign_in(http: httpx.Client, server: Server) -> None:
    email = unique_email("ops")

    result = server.cli("create-admin", "--email", email, "--password", STRONG_PASSWORD)

    assert result.returncode == 0, result.stdout + result.stderr
    me = http.get("/api/v1/users/me", headers=sign_in(http, email, STRONG_PASSWORD))
    assert me.json()["role"] == "admin"
    assert me.json()["email_verified"] is True

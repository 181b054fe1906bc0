"""Bad requests get a 4xx problem-details answer and change nothing; a bug gets a bare
500 that reveals nothing; every answer carries a request id."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from orderdesk.app import create_app
from orderdesk.container import Container
from tests.factories import STRONG_PASSWORD, unique_email, users_count
from tests.helpers import error_fields, problem

REGISTER = "/api/v1/auth/register"


def sign_up_body(**overrides: Any) -> dict[str, Any]:
    return {
        "email": unique_email(),
        "password": STRONG_PASSWORD,
        "full_name": "Valid Name",
        **overrides,
    }


@pytest.fixture
async def users_unchanged(container: Container) -> AsyncIterator[None]:
    """Fails the test when the users table's row count changed during it."""
    before = await users_count(container)
    yield
    assert await users_count(container) == before, "a refused request wrote a user"


# --- request bodies --------------------------------------------------------------------


@pytest.mark.usefixtures("users_unchanged")
async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    body = json.dumps(sign_up_body())[:-1]

    response = await client.post(
        REGISTER, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    body_problem = problem(response)
    assert body_problem["code"] == "validation_failed"
    assert body_problem["errors"][0]["type"] == "json_invalid"
    assert body_problem["errors"][0]["field"] == "body"


@pytest.mark.usefixtures("users_unchanged")
async def test_wrong_types_are_a_422_problem_naming_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        REGISTER, json={"email": 12345, "password": True, "full_name": ["Not", "A", "String"]}
    )

    assert response.status_code == 422
    assert error_fields(problem(response)) == {"email", "password", "full_name"}


@pytest.mark.usefixtures("users_unchanged")
async def test_a_json_body_that_is_not_an_object_is_a_422_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(REGISTER, json=["not", "an", "object"])

    assert response.status_code == 422
    assert problem(response)["code"] == "validation_failed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("full_name", "x" * 201, id="full-name-over-200-characters"),
        pytest.param("password", "Zq7!" * 300, id="password-over-the-maximum-length"),
        pytest.param("email", "not-an-email", id="invalid-email"),
        pytest.param("nickname", "ace", id="unknown-field"),
    ],
)
@pytest.mark.usefixtures("users_unchanged")
async def test_a_bad_field_is_a_422_problem_naming_only_that_field(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    response = await client.post(REGISTER, json=sign_up_body(**{field: value}))

    assert response.status_code == 422
    assert error_fields(problem(response)) == {field}


@pytest.mark.usefixtures("users_unchanged")
async def test_an_email_over_320_characters_is_a_422_problem(client: httpx.AsyncClient) -> None:
    local = "a" * 64
    domain = ".".join(["b" * 63] * 4) + ".example.com"
    email = f"{local}@{domain}"
    assert len(email) > 320

    response = await client.post(REGISTER, json=sign_up_body(email=email))

    assert response.status_code == 422
    assert error_fields(problem(response)) == {"email"}


@pytest.mark.usefixtures("users_unchanged")
async def test_missing_fields_are_a_422_problem_naming_each_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(REGISTER, json={})

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "validation_failed"
    assert error_fields(body) == {"email", "password", "full_name"}
    assert all(error["message"] for error in body["errors"])


@pytest.mark.usefixtures("users_unchanged")
async def test_a_weak_password_is_a_422_problem_on_the_password(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(REGISTER, json=sign_up_body(password="password123"))

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "weak_password"
    assert error_fields(body) == {"password"}


def oversized_sign_up(limit: int) -> bytes:
    """A valid sign-up padded with JSON whitespace past `limit`: it would create an
    account if the size limit did not stop it."""
    body = json.dumps(sign_up_body()).encode()
    return body + b" " * (limit + 1 - len(body))


@pytest.mark.usefixtures("users_unchanged")
async def test_a_body_over_the_size_limit_is_a_413_problem(
    client: httpx.AsyncClient, container: Container
) -> None:
    body = oversized_sign_up(container.settings.max_body_bytes)

    response = await client.post(
        REGISTER, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


@pytest.mark.usefixtures("users_unchanged")
async def test_a_streamed_body_over_the_size_limit_is_a_413_problem(
    client: httpx.AsyncClient, container: Container
) -> None:
    body = oversized_sign_up(container.settings.max_body_bytes)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    # No Content-Length: the limit must hold while the body is being read.
    response = await client.post(
        REGISTER, content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


async def test_a_body_at_the_size_limit_is_accepted(
    client: httpx.AsyncClient, container: Container
) -> None:
    body = oversized_sign_up(container.settings.max_body_bytes)[:-1]

    response = await client.post(
        REGISTER, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text


# --- routing ---------------------------------------------------------------------------


async def test_an_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert problem(response)["code"] == "not_found"


@pytest.mark.usefixtures("users_unchanged")
async def test_a_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.put(REGISTER, json=sign_up_body())

    assert response.status_code == 405
    assert problem(response)["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


# --- unhandled errors ------------------------------------------------------------------

SECRET_DETAIL = "secret-internal-detail"


@pytest.fixture
async def failing_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app with one extra route that fails with an unhandled error."""
    app = create_app(container.settings, container=container)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET_DETAIL)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_an_unhandled_exception_is_a_500_internal_error_problem(
    failing_client: httpx.AsyncClient,
) -> None:
    response = await failing_client.get("/boom")

    assert response.status_code == 500
    assert problem(response)["code"] == "internal_error"


async def test_a_500_reveals_no_exception_text_or_traceback(
    failing_client: httpx.AsyncClient,
) -> None:
    response = await failing_client.get("/boom")

    assert SECRET_DETAIL not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert "test_bad_input" not in response.text


async def test_a_500_still_carries_the_request_id(failing_client: httpx.AsyncClient) -> None:
    rid = f"boom-{uuid.uuid4().hex}"

    response = await failing_client.get("/boom", headers={"X-Request-ID": rid})

    assert response.headers["x-request-id"] == rid


# --- request ids -----------------------------------------------------------------------


async def test_a_well_formed_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    rid = f"client-{uuid.uuid4().hex}"

    response = await client.get("/health/live", headers={"X-Request-ID": rid})

    assert response.headers["x-request-id"] == rid


async def test_a_request_without_an_id_gets_a_generated_one(client: httpx.AsyncClient) -> None:
    first = await client.get("/health/live")
    second = await client.get("/health/live")

    assert uuid.UUID(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def malformed_request_ids() -> Iterator[str]:
    yield "has spaces in it"
    yield "x" * 500
    yield "semi;colon-injection"


@pytest.mark.parametrize("sent", list(malformed_request_ids()))
async def test_a_malformed_request_id_is_replaced_by_a_generated_one(
    client: httpx.AsyncClient, sent: str
) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": sent})

    returned = response.headers["x-request-id"]
    assert returned != sent
    assert uuid.UUID(returned)


async def test_error_responses_carry_the_request_id(client: httpx.AsyncClient) -> None:
    rid = f"client-{uuid.uuid4().hex}"

    response = await client.post(REGISTER, json={}, headers={"X-Request-ID": rid})

    assert response.status_code == 422
    assert response.headers["x-request-id"] == rid

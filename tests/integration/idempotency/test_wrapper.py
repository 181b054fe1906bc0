"""`@idempotent` on a route of its own (not POST /orders): the route's declared
status code and response model hold for the first answer, which is validated before
it is stored; an answer the model refuses is a 500 and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, PositiveInt
from sqlmodel import func, select

from orderdesk.app import create_app
from orderdesk.auth.dependencies import CurrentUser
from orderdesk.container import Container
from orderdesk.core.deps import UnitOfWorkDep
from orderdesk.idempotency.http import idempotent
from orderdesk.idempotency.models import IdempotencyRecord
from tests.factories import Headers, customer, idempotency

ECHO = "/api/v1/test/echo"


class Shout(BaseModel):
    text: str


class Echoed(BaseModel):
    text: str
    length: PositiveInt


class EchoedWithSecret(Echoed):
    secret: str


class Draft(BaseModel):
    """Another model with the same fields and looser rules."""

    text: str
    length: int


calls: list[str] = []


async def echo_service(data: Shout) -> Any:
    """Stands in for a service: what it returns depends on the text."""
    calls.append(data.text)
    if data.text == "invalid":
        return Draft(text=data.text, length=0)  # the response model refuses 0
    if data.text == "secret":
        return EchoedWithSecret(text=data.text, length=len(data.text), secret="hidden")
    return Echoed(text=data.text, length=len(data.text))


echo_router = APIRouter(prefix="/api/v1/test")


@echo_router.post("/echo", status_code=202, response_model=Echoed)
@idempotent
async def echo(data: Shout, caller: CurrentUser, uow: UnitOfWorkDep) -> Echoed:
    answer: Echoed = await echo_service(data)
    return answer


@pytest.fixture
async def echo_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    calls.clear()
    app = create_app(container.settings, container=container)
    app.include_router(echo_router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def caller(echo_client: httpx.AsyncClient) -> Headers:
    _, headers = await customer(echo_client)
    return headers


async def stored_keys(container: Container) -> int:
    async with container.database.sessions() as session:
        statement = select(func.count()).select_from(IdempotencyRecord)
        return (await session.exec(statement)).one()


async def test_first_answer_has_the_routes_status_and_its_replay_is_identical(
    echo_client: httpx.AsyncClient, caller: Headers
) -> None:
    headers = idempotency(caller, "echo-1")

    first = await echo_client.post(ECHO, json={"text": "hello"}, headers=headers)
    again = await echo_client.post(ECHO, json={"text": "hello"}, headers=headers)

    assert first.status_code == 202, first.text
    assert first.json() == {"text": "hello", "length": 5}
    assert "Idempotent-Replayed" not in first.headers
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert calls == ["hello"]


async def test_an_answer_the_response_model_refuses_is_a_500_and_stores_nothing(
    echo_client: httpx.AsyncClient, caller: Headers, container: Container
) -> None:
    headers = idempotency(caller, "echo-invalid")

    first = await echo_client.post(ECHO, json={"text": "invalid"}, headers=headers)
    retry = await echo_client.post(ECHO, json={"text": "invalid"}, headers=headers)

    assert first.status_code == 500, first.text
    assert first.json()["code"] == "internal_error"
    assert "length" not in first.text
    assert retry.status_code == 500  # not replayed: the failed request stored nothing
    assert calls == ["invalid", "invalid"]
    assert await stored_keys(container) == 0


async def test_the_stored_answer_has_only_the_response_models_fields(
    echo_client: httpx.AsyncClient, caller: Headers
) -> None:
    headers = idempotency(caller, "echo-secret")

    first = await echo_client.post(ECHO, json={"text": "secret"}, headers=headers)
    again = await echo_client.post(ECHO, json={"text": "secret"}, headers=headers)

    assert first.status_code == 202, first.text
    assert first.json() == {"text": "secret", "length": 6}
    assert again.content == first.content
    assert b"hidden" not in again.content

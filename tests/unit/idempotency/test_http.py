"""The `@idempotent` wrapper without a database: the claim and the record are
replaced at the service boundary, so these tests see what the wrapper decides."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import uuid
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

import pytest
from fastapi import Body, Depends, Response
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, PositiveInt
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.core.errors import DomainError
from orderdesk.core.uow import UnitOfWork
from orderdesk.idempotency import http as idempotency_http
from orderdesk.idempotency import service as idempotency_service
from orderdesk.idempotency.errors import IdempotencyKeyMissing
from orderdesk.idempotency.http import IdempotentRequest, fingerprint, idempotent
from orderdesk.idempotency.service import StoredResponse


class Order(BaseModel):
    quantity: int


class Placed(BaseModel):
    quantity: PositiveInt


class Draft(BaseModel):
    quantity: int


def caller_id() -> str:
    return "the caller"


Caller = Annotated[str, Depends(caller_id)]


class Ledger:
    """Claims and recorded answers, in memory, in place of the service functions."""

    def __init__(self) -> None:
        self.stored: dict[str, StoredResponse] = {}
        self.recorded: list[StoredResponse] = []

    async def claim_key(self, uow: Any, *, key: str, **_: Any) -> UUID | StoredResponse:
        return self.stored.get(key) or uuid.uuid4()

    async def record_response(self, uow: Any, claim: UUID, response: StoredResponse) -> None:
        self.recorded.append(response)


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    ledger = Ledger()
    monkeypatch.setattr(idempotency_service, "claim_key", ledger.claim_key)
    monkeypatch.setattr(idempotency_service, "record_response", ledger.record_response)
    return ledger


calls: list[int] = []


@idempotent
async def place(data: Order, caller: Caller) -> Placed:
    """The route's own docstring."""
    calls.append(data.quantity)
    return Draft(quantity=data.quantity)  # not yet checked against Placed


ROUTE = APIRoute("/orders", place, methods=["POST"], status_code=201, response_model=Placed)


def context(key: str | None) -> IdempotentRequest:
    return IdempotentRequest(
        uow=UnitOfWork(session=AsyncSession()),
        owner_id=uuid.uuid4(),
        key=key,
        method="POST",
        path="/orders",
        ttl=timedelta(hours=1),
        route=ROUTE,
    )


async def call(key: str | None, quantity: int) -> Any:
    hidden = idempotency_http._WRAPPER_ARGUMENT
    return await place(data=Order(quantity=quantity), caller="c", **{hidden: context(key)})


def test_the_route_keeps_its_parameters_and_gains_one_dependency() -> None:
    parameters = inspect.signature(place).parameters

    assert list(parameters)[:2] == ["data", "caller"]
    assert parameters["data"].annotation is Order  # resolved, not a string
    assert len(parameters) == 3
    assert inspect.signature(place).return_annotation is Placed
    assert place.__doc__ == "The route's own docstring."
    assert ROUTE.response_model is Placed


def test_a_route_with_two_bodies_is_refused_at_import() -> None:
    async def two(first: Order, second: Placed) -> Placed:
        raise AssertionError

    with pytest.raises(TypeError, match="one request body"):
        idempotent(two)


def test_a_body_declared_with_body_counts_as_the_body() -> None:
    async def two(first: Annotated[Order, Body()], second: Placed) -> Placed:
        raise AssertionError

    with pytest.raises(TypeError, match="one request body"):
        idempotent(two)


def current_placed() -> Placed:
    return Placed(quantity=1)


def test_a_model_from_another_source_is_not_the_body() -> None:
    async def route(data: Order, seen: Annotated[Placed, Depends(current_placed)]) -> Placed:
        raise AssertionError

    idempotent(route)  # one body: `seen` comes from a dependency


async def test_an_annotated_body_is_what_the_fingerprint_covers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fingerprints: list[str] = []

    async def claim_key(uow: Any, *, fingerprint: str, **_: Any) -> UUID:
        fingerprints.append(fingerprint)
        return uuid.uuid4()

    async def record_response(*_: Any) -> None:
        return None

    monkeypatch.setattr(idempotency_service, "claim_key", claim_key)
    monkeypatch.setattr(idempotency_service, "record_response", record_response)

    @idempotent
    async def annotated(data: Annotated[Order, Body(embed=False)]) -> Placed:
        return Placed(quantity=data.quantity)

    hidden = idempotency_http._WRAPPER_ARGUMENT
    for quantity in (1, 2):
        await annotated(data=Order(quantity=quantity), **{hidden: context("k")})

    assert fingerprints == [
        fingerprint("POST", "/orders", Order(quantity=1)),
        fingerprint("POST", "/orders", Order(quantity=2)),
    ]


def test_a_route_taking_the_response_is_refused_at_import() -> None:
    async def sets_headers(data: Order, response: Response) -> Placed:
        raise AssertionError

    with pytest.raises(TypeError, match="Response parameter"):
        idempotent(sets_headers)


async def test_a_fresh_key_runs_the_route_and_records_the_validated_answer(
    ledger: Ledger,
) -> None:
    calls.clear()

    response = await call("k1", 3)

    assert (response.status_code, response.body) == (201, b'{"quantity":3}')
    assert response.headers["content-type"] == "application/json"
    assert "Idempotent-Replayed" not in response.headers
    assert ledger.recorded == [StoredResponse(status_code=201, body=b'{"quantity":3}')]
    assert calls == [3]


async def test_a_stored_answer_is_replayed_without_running_the_route(ledger: Ledger) -> None:
    calls.clear()
    ledger.stored["k2"] = StoredResponse(status_code=201, body=b'{"quantity":  7}')

    response = await call("k2", 7)

    assert (response.status_code, response.body) == (201, b'{"quantity":  7}')
    assert response.headers["Idempotent-Replayed"] == "true"
    assert calls == []
    assert ledger.recorded == []


async def test_a_missing_key_is_refused_before_anything_runs(ledger: Ledger) -> None:
    calls.clear()

    with pytest.raises(IdempotencyKeyMissing):
        await call(None, 3)

    assert calls == []
    assert ledger.recorded == []


async def test_an_answer_the_response_model_refuses_raises_and_records_nothing(
    ledger: Ledger,
) -> None:
    with pytest.raises(ResponseValidationError):
        await call("k3", 0)  # Placed needs a positive quantity

    assert ledger.recorded == []


def test_the_fingerprint_is_of_the_parsed_body_the_method_and_the_path() -> None:
    body = Order.model_validate_json('{ "quantity" : 2 }')
    same = fingerprint("POST", "/orders", Order(quantity=2))

    assert fingerprint("POST", "/orders", body) == same
    assert fingerprint("POST", "/orders", Order(quantity=3)) != same
    assert fingerprint("POST", "/other", body) != same
    assert fingerprint("PUT", "/orders", body) != same
    assert fingerprint("POST", "/orders", None) != same


def test_the_fingerprint_is_the_one_deployed_rows_were_stored_with() -> None:
    # A retry across an upgrade must still match the row its first attempt stored.
    expected = hashlib.sha256(b'POST /orders\n{"quantity":2}').hexdigest()

    assert fingerprint("POST", "/orders", Order(quantity=2)) == expected


class Pending(BaseModel):
    pending: bool = True


class Refused(DomainError):
    code = "refused"


class RefusedKeepingChanges(DomainError):
    code = "refused_keeping"
    commit_changes = True


@idempotent
async def maybe_pending(data: Order) -> Placed | Pending:
    if data.quantity == 0:
        return Pending()
    if data.quantity < 0:
        raise RefusedKeepingChanges() if data.quantity == -2 else Refused()
    return Placed(quantity=data.quantity)


PENDING_ROUTE = APIRoute(
    "/orders",
    maybe_pending,
    methods=["POST"],
    response_model=Placed,
    responses={202: {"model": Pending}},
)


def pending_context(key: str, *, checkpoints: int = 0) -> IdempotentRequest:
    base = context(key)
    base.uow.checkpoints = checkpoints
    return dataclasses.replace(base, route=PENDING_ROUTE)


async def call_pending(request: IdempotentRequest, quantity: int) -> Any:
    hidden = idempotency_http._WRAPPER_ARGUMENT
    return await maybe_pending(data=Order(quantity=quantity), **{hidden: request})


async def test_an_answer_of_another_declared_model_is_sent_and_stored_with_its_status(
    ledger: Ledger,
) -> None:
    pending = await call_pending(pending_context("p1"), 0)
    placed = await call_pending(pending_context("p2"), 4)

    assert (pending.status_code, pending.body) == (202, b'{"pending":true}')
    assert (placed.status_code, placed.body) == (200, b'{"quantity":4}')
    assert ledger.recorded == [
        StoredResponse(status_code=202, body=b'{"pending":true}'),
        StoredResponse(status_code=200, body=b'{"quantity":4}'),
    ]


@pytest.mark.parametrize(
    ("quantity", "steps"),
    [
        pytest.param(-1, ["rollback", "release", "commit"], id="rolled-back-refusal"),
        pytest.param(-2, ["release"], id="refusal-committing-its-changes"),
    ],
)
async def test_a_failure_after_a_checkpoint_releases_the_committed_claim(
    monkeypatch: pytest.MonkeyPatch, quantity: int, steps: list[str]
) -> None:
    done: list[str] = []
    request = pending_context("p3", checkpoints=1)

    async def claim_key(uow: Any, **_: Any) -> UUID:
        return CLAIM

    async def release_claim(uow: Any, claim: UUID) -> None:
        assert claim == CLAIM
        done.append("release")

    async def note(step: str) -> None:
        done.append(step)

    monkeypatch.setattr(idempotency_service, "claim_key", claim_key)
    monkeypatch.setattr(idempotency_service, "release_claim", release_claim)
    monkeypatch.setattr(request.uow, "rollback", lambda: note("rollback"))
    monkeypatch.setattr(request.uow, "commit", lambda: note("commit"))

    with pytest.raises(DomainError):
        await call_pending(request, quantity)

    # Rolled back first, so what the failed step wrote does not commit with the
    # release; a refusal that keeps its changes leaves the commit to the unit of work.
    assert done == steps


async def test_a_failure_before_any_checkpoint_leaves_the_claim_to_the_rollback(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    released: list[UUID] = []

    async def release_claim(uow: Any, claim: UUID) -> None:
        released.append(claim)

    monkeypatch.setattr(idempotency_service, "release_claim", release_claim)

    with pytest.raises(Refused):
        await call_pending(pending_context("p4"), -1)

    assert released == []


CLAIM = uuid.UUID("0190f5f0-0000-7000-8000-00000000c1a1")


async def test_an_invalid_answer_after_a_checkpoint_releases_the_claim_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    released: list[UUID] = []
    request = dataclasses.replace(context("p5"), route=ROUTE)
    request.uow.checkpoints = 1

    async def claim_key(uow: Any, **_: Any) -> UUID:
        return CLAIM

    async def release_claim(uow: Any, claim: UUID) -> None:
        released.append(claim)

    async def nothing() -> None:
        return None

    monkeypatch.setattr(idempotency_service, "claim_key", claim_key)
    monkeypatch.setattr(idempotency_service, "release_claim", release_claim)
    monkeypatch.setattr(request.uow, "rollback", nothing)
    monkeypatch.setattr(request.uow, "commit", nothing)

    hidden = idempotency_http._WRAPPER_ARGUMENT
    with pytest.raises(ResponseValidationError):
        await place(data=Order(quantity=0), caller="c", **{hidden: request})

    assert released == [CLAIM]

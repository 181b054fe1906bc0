"""`Idempotency-Key`: a retried request replays the first response instead of acting
twice. A route declares it with `@idempotent`; its body stays one service call.

Keys are scoped to the caller. Once the path, the query and the body are valid (so
a bad body is reported before a missing key, which is a 400), the request claims
its key by inserting a row in the *same transaction* as its effect, and the unique
`(owner, key)` constraint decides between concurrent duplicates on every server
process. What a duplicate that arrives while the first is still running sees
depends on the database:

- PostgreSQL: the first holds a transaction-scoped advisory lock on the key, taken
  without waiting before the claim; the duplicate finds it taken and is answered
  409 `idempotency_key_in_flight` at once.
- SQLite: the duplicate's write transaction (`BEGIN IMMEDIATE`, issued by its
  claim) waits for the first's to end, up to the busy timeout, then replays.

Once the first has committed, a retry with the same key and body replays its
response byte for byte with `Idempotent-Replayed: true`; the same key with another
body is a 422 `idempotency_key_reused`. The first answer is validated against the
route's response model, then stored as the exact bytes sent. A request that fails
(validation, a domain error, an invalid answer) stores nothing: its claim rolls
back with it and a retry runs afresh. Keys expire after
`ORDERDESK_IDEMPOTENCY_TTL_SECONDS`.

A route whose service must call out over the network between transactions (a
payment) commits at a checkpoint (`UnitOfWork.checkpoint`), and with it the claim:
from then on a duplicate sees the key in flight (409) on both databases until the
first answers, and a failure after the checkpoint takes the claim back, so a retry
still runs afresh. A route may also answer another 2xx status it declares with its
own model (`responses={202: {"model": PaymentPending}}`): an answer that is an
instance of that model is sent, stored and replayed with that status.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, get_args, get_origin, get_type_hints
from uuid import UUID

from fastapi import Depends, Header, Request, params
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError
from starlette.responses import Response

from orderdesk.auth.dependencies import CurrentUser
from orderdesk.container import ContainerDep
from orderdesk.core.deps import UnitOfWorkDep
from orderdesk.core.errors import DomainError
from orderdesk.core.openapi import problems, required_headers
from orderdesk.core.text import SINGLE_LINE
from orderdesk.core.uow import UnitOfWork
from orderdesk.idempotency import service as idempotency_service
from orderdesk.idempotency.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
)
from orderdesk.idempotency.service import StoredResponse

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
JSON = "application/json"

# The bounds sit on the string itself, not on the optional header around it, so the
# document shows them on the string the client sends.
_Key = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"), SINGLE_LINE
]


@required_headers(IDEMPOTENCY_HEADER)
async def idempotency_key(
    key: Annotated[_Key | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
) -> str | None:
    """The key as sent; its absence is refused by the wrapper, after the path and
    the body have been validated, so a bad body is reported first."""
    return key


def fingerprint(method: str, path: str, body: BaseModel | None) -> str:
    """What makes two requests "the same": method, path and the parsed body (so
    whitespace and key order in the JSON do not matter)."""
    canonical = b"" if body is None else body.model_dump_json(round_trip=True).encode()
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """What the wrapper needs besides the route's own arguments."""

    uow: UnitOfWork
    owner_id: UUID
    key: str | None
    method: str
    path: str
    ttl: timedelta
    route: APIRoute


@problems(IdempotencyKeyMissing, IdempotencyKeyInFlight, IdempotencyKeyReused)
async def idempotent_request(
    request: Request,
    caller: CurrentUser,
    key: Annotated[str | None, Depends(idempotency_key)],
    uow: UnitOfWorkDep,  # the route's own unit of work (FastAPI resolves it once)
    c: ContainerDep,
) -> IdempotentRequest:
    route = request.scope["route"]
    assert isinstance(route, APIRoute)
    return IdempotentRequest(
        uow=uow,
        owner_id=caller.id,
        key=key,
        method=request.method,
        path=request.url.path,
        ttl=timedelta(seconds=c.settings.idempotency_ttl_seconds),
        route=route,
    )


_WRAPPER_ARGUMENT = "_idempotent_request"
Endpoint = Callable[..., Awaitable[Any]]


def idempotent(endpoint: Endpoint) -> Endpoint:
    """Make a route idempotent under the caller's `Idempotency-Key` (see the module
    docstring). Put it beneath the router's decorator; the route's status code and
    response model are those it declares. The request body, if any, is the one
    parameter annotated with a Pydantic model class (bare or with `Body()`). It
    cannot take a `Response` parameter: the answer is stored and replayed as its
    body and status alone.

    FastAPI sees the route's own parameters plus one dependency that brings the key,
    the caller and the unit of work; the route's body runs only when this request
    has claimed a fresh key.
    """
    hints = get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint)
    parameters = [
        parameter.replace(annotation=hints.get(name, parameter.annotation))
        for name, parameter in signature.parameters.items()
    ]
    for parameter in parameters:
        if _base_type(parameter.annotation) is Response:
            # Headers set on the injected response would not reach a raw Response
            # answer, nor be stored for the replay: refuse rather than drop them.
            raise TypeError(
                f"{endpoint.__name__}: an idempotent route cannot take a Response parameter; "
                "its headers could not be replayed"
            )
    bodies = [parameter.name for parameter in parameters if _is_body(parameter.annotation)]
    if len(bodies) > 1:
        raise TypeError(f"{endpoint.__name__}: one request body at most, found {bodies}")
    body_name = bodies[0] if bodies else None
    extra = inspect.Parameter(
        _WRAPPER_ARGUMENT,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[IdempotentRequest, Depends(idempotent_request)],
    )

    @functools.wraps(endpoint)
    async def run_once(**arguments: Any) -> Response:
        context: IdempotentRequest = arguments.pop(_WRAPPER_ARGUMENT)
        body = arguments.get(body_name) if body_name is not None else None
        return await _run_once(context, body, lambda: endpoint(**arguments))

    run_once.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*parameters, extra], return_annotation=hints.get("return")
    )
    return run_once


def _base_type(annotation: Any) -> Any:
    """`X` for `X` and for `Annotated[X, ...]`."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _is_body(annotation: Any) -> bool:
    """Whether FastAPI reads this parameter from the request body: a Pydantic model,
    bare or `Annotated` with nothing but `Body()` (a model behind `Depends`,
    `Query` or another source is not the body)."""
    base = _base_type(annotation)
    if not (isinstance(base, type) and issubclass(base, BaseModel)):
        return False
    metadata = get_args(annotation)[1:] if get_origin(annotation) is Annotated else ()
    sources = [m for m in metadata if isinstance(m, params.Param | params.Depends | params.Body)]
    return all(isinstance(m, params.Body) for m in sources)


async def _run_once(
    context: IdempotentRequest, body: BaseModel | None, action: Callable[[], Awaitable[Any]]
) -> Response:
    if context.key is None:
        raise IdempotencyKeyMissing()
    claim = await idempotency_service.claim_key(
        context.uow,
        owner_id=context.owner_id,
        key=context.key,
        fingerprint=fingerprint(context.method, context.path, body),
        ttl=context.ttl,
    )
    if isinstance(claim, StoredResponse):
        return Response(
            claim.body,
            status_code=claim.status_code,
            media_type=JSON,
            headers={REPLAY_HEADER: "true"},
        )
    try:
        content = await action()
        status_code, model = _answer_of(context.route, content)
        answer = StoredResponse(status_code=status_code, body=_validated_json(model, content))
        await idempotency_service.record_response(context.uow, claim, answer)
    except BaseException as exc:
        if context.uow.checkpoints:
            await _release(context.uow, claim, keep_changes=_commits_changes(exc))
        raise
    return Response(answer.body, status_code=answer.status_code, media_type=JSON)


def _commits_changes(exc: BaseException) -> bool:
    return isinstance(exc, DomainError) and exc.commit_changes


async def _release(uow: UnitOfWork, claim: UUID, *, keep_changes: bool) -> None:
    """The route committed the claim at a checkpoint and then failed: take the claim
    back, so a retry runs afresh (as after a failure that rolled it back). With a
    refusal that commits its changes, the release commits with them; otherwise what
    the failed step did is rolled back and the release committed alone."""
    if not keep_changes:
        await uow.rollback()
    await idempotency_service.release_claim(uow, claim)
    if not keep_changes:
        await uow.commit()


def _answer_of(route: APIRoute, content: Any) -> tuple[int, Any]:
    """The status and model of an answer: another success status the route declares
    (`responses={202: {"model": Pending}}`) when the answer is that model, else the
    route's own."""
    for status, spec in (route.responses or {}).items():
        model = spec.get("model") if isinstance(spec, dict) else None
        if isinstance(model, type) and isinstance(content, model) and 200 <= int(status) < 300:
            return int(status), model
    return route.status_code or 200, route.response_model


def _validated_json(response_model: Any, content: Any) -> bytes:
    """The answer as the route's response model admits it, as JSON bytes: validated
    and serialised exactly as FastAPI treats what any other route returns (an
    instance of the model itself was validated when it was made; anything else, a
    dict or another model, is validated field by field and cut to the model's
    fields), so an answer the model refuses is a bug (a 500), never stored."""
    adapter = _adapter(response_model)
    try:
        return adapter.dump_json(adapter.validate_python(content, from_attributes=True))
    except ValidationError as exc:
        raise ResponseValidationError(exc.errors(include_url=False), body=content) from exc


@functools.cache
def _adapter(response_model: Any) -> TypeAdapter[Any]:
    if response_model is None:
        raise TypeError("an idempotent route must declare its response model")
    return TypeAdapter(response_model)

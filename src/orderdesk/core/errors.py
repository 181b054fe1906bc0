"""Domain errors and their one rendering: RFC 9457 problem details.

Services and repositories raise `DomainError` subclasses; each carries its HTTP
status and a stable machine-readable `code`. Nothing below the route layer knows
about HTTP exceptions, and no internals (stack traces, SQL, secrets) reach a client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Scope

PROBLEM_JSON = "application/problem+json"
_log = structlog.get_logger(__name__)


class DomainError(Exception):
    status: ClassVar[int] = HTTPStatus.BAD_REQUEST
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    # A refusal that is itself a state change (e.g. revoking a token family on reuse)
    # sets this, so the unit of work commits before the error is rendered.
    commit_changes: ClassVar[bool] = False

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})

    def extra(self) -> dict[str, Any]:
        return {}


class NotFound(DomainError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"
    title = "Not found"


class Unauthorized(DomainError):
    status = HTTPStatus.UNAUTHORIZED
    code = "not_authenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(DomainError):
    status = HTTPStatus.FORBIDDEN
    code = "forbidden"
    title = "Not allowed"


class Conflict(DomainError):
    status = HTTPStatus.CONFLICT
    code = "conflict"
    title = "Conflict"


class ConcurrentUpdate(Conflict):
    code = "concurrent_update"
    title = "The resource was changed by another request; reload and retry"


class InvalidInput(DomainError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_input"
    title = "Invalid input"

    def __init__(self, detail: str, *, field: Sequence[str | int] | None = None) -> None:
        super().__init__(detail)
        self.field = list(field) if field else None

    def extra(self) -> dict[str, Any]:
        if self.field is None:
            return {}
        return {"errors": [{"field": _dotted(self.field), "message": self.detail}]}


class TooManyRequests(DomainError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(DomainError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"
    title = "Service unavailable"


class ValidationFailed(InvalidInput):
    """What the framework answers when parameters or a body do not match their schema
    (rendered by `_validation_error`; the class names the code for the document)."""

    code = "validation_failed"
    title = "The request is not valid"


class MalformedBody(DomainError):
    """A body that cannot be decoded at all (not UTF-8, not JSON); the framework raises
    it, `_http_error` renders it with this code."""

    status = HTTPStatus.BAD_REQUEST
    code = "malformed_body"
    title = "The request body cannot be parsed"


class PayloadTooLarge(DomainError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"
    title = "Payload too large"


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {
        "type": f"urn:orderdesk:problem:{code}",
        "title": title,
        "status": int(status),
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=int(status), headers=headers, media_type=PROBLEM_JSON)


def _dotted(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc)


async def _domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return _render(exc)


def _render(exc: DomainError) -> Response:
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        **exc.extra(),
    )


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        loc = [part for part in error.get("loc", ()) if part != "body"] or ["body"]
        if error["type"] == "json_invalid":
            loc = ["body"]  # its location is a character offset, not a field
        message = error["msg"].removeprefix("Value error, ")
        errors.append({"field": _dotted(loc), "message": message, "type": error["type"]})
    return problem_response(
        status=ValidationFailed.status,
        code=ValidationFailed.code,
        title=ValidationFailed.title,
        detail=f"{len(errors)} field(s) failed validation",
        errors=errors,
    )


# Stable codes for the HTTP errors the framework raises itself.
_HTTP_CODES = {
    HTTPStatus.BAD_REQUEST: "malformed_body",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = HTTPStatus(exc.status_code)
    headers = exc.headers
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        # Starlette names only the methods of the first route that matched the path;
        # a path served by several routes (GET, PATCH, DELETE) takes all of theirs.
        allow = ", ".join(allowed_methods(request.app, request.scope))
        if request.method == "OPTIONS":
            return Response(status_code=HTTPStatus.NO_CONTENT, headers={"Allow": allow})
        headers = {**(headers or {}), "Allow": allow}
    code = _HTTP_CODES.get(status) or status.phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if isinstance(exc.detail, str) else status.description
    return problem_response(
        status=status, code=code, title=status.phrase, detail=detail, headers=headers
    )


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """The methods some route takes at this path, with the implicit HEAD (for GET)
    and OPTIONS."""
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
        )
    ]
    if "GET" in allowed:
        allowed.insert(1, "HEAD")
    return [*allowed, "OPTIONS"]


def internal_error_response() -> Response:
    """The only thing a client learns of a bug: that it happened, and its request id."""
    return problem_response(
        status=HTTPStatus.INTERNAL_SERVER_ERROR,
        code="internal_error",
        title="Internal server error",
        detail="The server failed to handle this request; it has been logged.",
    )


# Overload or a lost connection, not a bug: the client may retry shortly.
_RETRY_SOON = {"Retry-After": "1"}


async def _database_error(_: Request, exc: Exception) -> Response:
    """A pooled connection found dead (the database restarted, a proxy dropped it):
    SQLAlchemy has already discarded it and the pool's older connections, so a
    retry gets a fresh one. Anything else from the driver is a bug (a 500)."""
    assert isinstance(exc, DBAPIError)
    if not exc.connection_invalidated:
        raise exc
    _log.warning("database_connection_lost", error=type(exc.orig).__name__)
    detail = "The connection to the database was lost; retry the request."
    return _render(ServiceUnavailable(detail, headers=_RETRY_SOON))


async def _pool_timeout(_: Request, exc: Exception) -> Response:
    """Every pooled connection stayed busy for the whole pool timeout."""
    _log.warning("database_pool_exhausted")
    return _render(
        ServiceUnavailable("The server is busy; retry the request.", headers=_RETRY_SOON)
    )


async def _unreachable(_: Request, exc: Exception) -> Response:
    """A connection could not be opened at all (the database is down or restarting;
    the driver raises the socket's error, not a DBAPI one)."""
    _log.warning("connection_refused", error=type(exc).__name__)
    detail = "A service this request needs is unreachable; retry shortly."
    return _render(ServiceUnavailable(detail, headers=_RETRY_SOON))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
    app.add_exception_handler(ConnectionError, _unreachable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


class PreconditionFailed(DomainError):
    status = HTTPStatus.PRECONDITION_FAILED
    code = "version_mismatch"
    title = "The resource has changed since you read it; reload and retry"


class PreconditionRequired(DomainError):
    status = HTTPStatus.PRECONDITION_REQUIRED
    code = "if_match_required"
    title = "This update needs an If-Match header with the resource's version"


class UnsupportedMediaType(DomainError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"
    title = "Unsupported media type"

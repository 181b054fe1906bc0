"""structlog set-up and the request context: request id, access log, last-resort 500.

Every log line a request causes carries its `request_id` (bound in a contextvar), and
the same id is returned in `X-Request-ID`.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import structlog
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderdesk.core.errors import internal_error_response, problem_response
from orderdesk.core.ids import new_id

REQUEST_ID_HEADER = "x-request-id"
# Accept a caller's id only when it is a plain token, so it is safe in logs and headers.
_WELL_FORMED_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
log = structlog.get_logger("orderdesk.http")
_HANDLER_NAME = "orderdesk"


def configure_logging(*, log_format: str, level: str) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
    ]
    renderer: structlog.types.Processor
    if log_format == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        # No local variables in tracebacks: they are slow to render and can hold
        # passwords and tokens.
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Standard-library loggers (uvicorn, sqlalchemy, alembic) go through the same renderer.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler, so calling this again (or under a test runner
    # that captures logs) never drops anyone else's.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The access log below replaces uvicorn's, with the request id and duration.
    logging.getLogger("uvicorn.access").disabled = True


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _WELL_FORMED_REQUEST_ID.match(candidate):
                return candidate
            break
    return str(new_id())


class RequestContextMiddleware:
    """Binds the request id, logs one access line per request, enforces the body
    size limit and turns an unhandled exception into a bare 500 problem."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, large_bodies: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Paths allowed a larger body (bulk imports), with their own limit.
        self.large_bodies = large_bodies or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        limit = self.large_bodies.get(scope["path"], self.max_body_bytes)
        started = time.perf_counter()
        status = 500
        response_started = False
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        if _declared_length(scope) > limit:
            await self._too_large(scope, receive, send_with_id, limit)
            status = 413
        else:
            try:
                await self.app(scope, receive_limited, send_with_id)
            except _BodyTooLarge:
                if not response_started:
                    await self._too_large(scope, receive, send_with_id, limit)
            except Exception:
                log.exception("unhandled_error", method=scope["method"], path=scope["path"])
                if not response_started:
                    await internal_error_response()(scope, receive, send_with_id)
        log.info(
            "request",
            method=scope["method"],
            path=scope["path"],
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            **_user_of(scope),
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            status=413,
            code="payload_too_large",
            title="Payload too large",
            detail=f"Request bodies are limited to {limit} bytes.",
        )
        await response(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised while the body streams in. An HTTP exception, so that FastAPI's body
    parsing passes it through to the problem handler instead of calling it a
    malformed body."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes.")


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _user_of(scope: Scope) -> dict[str, Any]:
    user_id = scope.get("state", {}).get("user_id")
    return {"user_id": str(user_id)} if user_id else {}

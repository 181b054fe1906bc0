"""structlog set-up and the request context: request id, access log, last-resort 500.

Every log line a request causes carries its `request_id` (bound in a contextvar), and
the same id is returned in `X-Request-ID`.

Nothing is rendered or written on the thread that logs: the root logger's handler
only puts the record on a queue, and one listener thread renders it (tracebacks
included) and writes it to stderr, so a 500's traceback never stalls the event loop.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import queue
import re
import sys
import time
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

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
# The bound context of the thread that logged a standard-library record.
_CONTEXT_ATTRIBUTE = "orderdesk_context"


def configure_logging(*, log_format: str, level: str) -> None:
    """Idempotent: a second call flushes and replaces the first one's listener."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.add_logger_name,
            _capture_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Standard-library loggers (uvicorn, sqlalchemy, alembic) go through the same
    # renderer; their context and time were taken when they logged.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _context_of_record,
            structlog.processors.add_log_level,
            _timestamp_of_record,
            structlog.stdlib.add_logger_name,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderers(log_format, sys.stderr),
        ],
    )
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(formatter)
    handler = _HandOff(_start_listener(output))
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
    # The stripe SDK and httpx log every request at INFO (three lines per gateway
    # call): at INFO only their warnings and errors come through; DEBUG shows all.
    for name in ("stripe", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING if level == "INFO" else level)


def flush_logging() -> None:
    """Write every record logged so far and stop the listener (at exit; tests); later
    records are written on the thread that logs them."""
    global _listener
    listener, _listener = _listener, None
    if listener is not None and listener.pid == os.getpid():
        listener.stop()


def _renderers(log_format: str, stream: TextIO) -> list[structlog.types.Processor]:
    if log_format == "json":
        # Frames as a list of objects, without local variables: they can hold
        # passwords and tokens.
        transformer = structlog.tracebacks.ExceptionDictTransformer(
            show_locals=False, use_rich=False
        )
        return [
            structlog.processors.ExceptionRenderer(transformer),
            structlog.processors.JSONRenderer(),
        ]
    # Plain tracebacks (rich's took seconds per error), colour only on a terminal.
    colors = stream.isatty() and not os.environ.get("NO_COLOR")
    return [
        structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    ]


class _Listener(QueueListener):
    """The thread that renders and writes; `pid` tells a forked child that the
    thread it inherited the object of is not running there."""

    def __init__(self, output: logging.Handler) -> None:
        super().__init__(queue.SimpleQueue(), output, respect_handler_level=True)
        self.output = output
        self.pid = os.getpid()
        self.running = True
        self.start()

    def stop(self) -> None:
        self.running = False
        super().stop()  # hands over every queued record first


class _HandOff(QueueHandler):
    """Queues records as they are. The stock `prepare()` renders the message (with
    the traceback) here and drops `exc_info` and structlog's event dict; this one
    leaves rendering to the listener and only fixes what would change meanwhile."""

    def __init__(self, listener: _Listener) -> None:
        super().__init__(listener.queue)
        self.listener = listener

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)  # other handlers (pytest's caplog) keep the original
        if not hasattr(record, "_logger"):  # not structlog's: it has no context yet
            record.msg, record.args = record.getMessage(), None
            setattr(record, _CONTEXT_ATTRIBUTE, structlog.contextvars.get_contextvars())
        return record

    def emit(self, record: logging.LogRecord) -> None:
        if self.listener.running:
            super().emit(record)
        else:  # after `flush_logging` (exit): nothing would read the queue
            self.listener.output.handle(self.prepare(record))


_listener: _Listener | None = None


def _start_listener(output: logging.Handler) -> _Listener:
    global _listener
    flush_logging()
    _listener = _Listener(output)
    return _listener


def _restart_in_child() -> None:
    # A forked child (Celery's prefork pool) inherits the queue but not the thread:
    # give it a listener of its own with the same output.
    global _listener
    if _listener is None or _listener.pid == os.getpid():
        return
    _listener = _Listener(_listener.output)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _HandOff):
            handler.listener, handler.queue = _listener, _listener.queue


atexit.register(flush_logging)
os.register_at_fork(after_in_child=_restart_in_child)


def _capture_exc_info(_: Any, __: str, event_dict: Any) -> Any:
    # `exc_info=True` means "the exception being handled", which only this thread
    # knows; the listener gets the exception itself.
    if event_dict.get("exc_info") is True:
        exc_info = sys.exc_info()
        event_dict["exc_info"] = exc_info if exc_info[0] is not None else False
    elif isinstance(event_dict.get("exc_info"), BaseException):
        error = event_dict["exc_info"]
        event_dict["exc_info"] = (type(error), error, error.__traceback__)
    return event_dict


def _context_of_record(_: Any, __: str, event_dict: Any) -> Any:
    record = event_dict.get("_record")
    context = getattr(record, _CONTEXT_ATTRIBUTE, None) or {}
    return {**context, **event_dict}


def _timestamp_of_record(_: Any, __: str, event_dict: Any) -> Any:
    record = event_dict.get("_record")
    created = record.created if record is not None else time.time()
    stamp = datetime.fromtimestamp(created, tz=UTC).isoformat().replace("+00:00", "Z")
    event_dict["timestamp"] = stamp
    return event_dict


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

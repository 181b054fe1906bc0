"""Log output: plain text without colour codes when stderr is not a terminal,
structured exceptions in JSON, rendered by the listener thread with the context of
the thread that logged, and nothing lost when the process flushes at exit."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator

import pytest
import structlog

from orderdesk.core.logging import configure_logging, flush_logging

ANSI_ESCAPE = "\x1b["
Configure = Callable[[str], "NotATerminal"]


class NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], NotATerminal]]:
    """Configures logging to a stream that is not a terminal, in the test's own phase
    (pytest puts its capture back on `sys.stderr` between set-up and call)."""

    def to_file(log_format: str) -> NotATerminal:
        stream = NotATerminal()
        monkeypatch.setattr("sys.stderr", stream)
        configure_logging(log_format=log_format, level="INFO")
        return stream

    yield to_file
    flush_logging()
    monkeypatch.undo()
    structlog.contextvars.clear_contextvars()
    configure_logging(log_format="console", level="WARNING")


def log_an_error() -> None:
    try:
        raise ValueError("the order total overflowed")
    except ValueError:
        structlog.get_logger("orderdesk.test").exception("unhandled_error", path="/x")


def test_console_logs_to_a_file_carry_no_colour_codes(configure: Configure) -> None:
    stderr = configure("console")

    structlog.get_logger("orderdesk.test").info("request", status=200)
    logging.getLogger("uvicorn.error").warning("a standard-library line")
    log_an_error()
    flush_logging()

    output = stderr.getvalue()
    assert "request" in output
    assert "a standard-library line" in output
    assert ANSI_ESCAPE not in output


def test_a_console_traceback_is_plain_text(configure: Configure) -> None:
    stderr = configure("console")

    log_an_error()
    flush_logging()

    output = stderr.getvalue()
    assert "Traceback (most recent call last):" in output
    assert "ValueError: the order total overflowed" in output
    assert not set("╭╰│─") & set(output)  # rich's boxes


def test_a_json_exception_is_structured(configure: Configure) -> None:
    stderr = configure("json")

    log_an_error()
    flush_logging()

    record = json.loads(stderr.getvalue())
    assert record["event"] == "unhandled_error"
    [exception] = record["exception"]
    assert exception["exc_type"] == "ValueError"
    assert exception["exc_value"] == "the order total overflowed"
    assert exception["frames"][-1]["name"] == "log_an_error"


def test_standard_library_lines_carry_the_context_of_the_thread_that_logged(
    configure: Configure,
) -> None:
    stderr = configure("json")
    structlog.contextvars.bind_contextvars(request_id="req-12345678")

    logging.getLogger("sqlalchemy.pool").warning("connection %s invalidated", "c1")
    structlog.contextvars.clear_contextvars()
    flush_logging()

    record = json.loads(stderr.getvalue())
    assert record["event"] == "connection c1 invalidated"
    assert record["request_id"] == "req-12345678"
    assert record["logger"] == "sqlalchemy.pool"


def test_lines_are_rendered_off_the_logging_thread(configure: Configure) -> None:
    configure("json")
    rendered_on: list[str] = []

    class Spy:
        def __repr__(self) -> str:
            rendered_on.append(threading.current_thread().name)
            return "spy"

    structlog.get_logger("orderdesk.test").info("spied", value=Spy())
    flush_logging()

    # pytest's own capture formats the record on this thread too; ours must not.
    assert set(rendered_on) - {threading.current_thread().name}


def test_configuring_again_flushes_what_was_logged(configure: Configure) -> None:
    stderr = configure("json")
    for number in range(200):
        structlog.get_logger("orderdesk.test").info("line", number=number)

    configure_logging(log_format="json", level="INFO")

    numbers = [json.loads(line)["number"] for line in stderr.getvalue().splitlines()]
    assert numbers == list(range(200))


def test_a_line_logged_after_the_final_flush_is_still_written(configure: Configure) -> None:
    stderr = configure("json")
    flush_logging()

    structlog.get_logger("orderdesk.test").info("late")

    assert json.loads(stderr.getvalue())["event"] == "late"


@pytest.mark.parametrize(
    ("level", "expected"), [("INFO", logging.WARNING), ("DEBUG", logging.DEBUG)]
)
def test_the_gateway_clients_request_lines_are_quiet_at_info(level: str, expected: int) -> None:
    configure_logging(log_format="json", level=level)
    try:
        assert logging.getLogger("stripe").level == expected
        assert logging.getLogger("httpx").level == expected
    finally:
        configure_logging(log_format="json", level="INFO")

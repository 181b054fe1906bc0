"""Reaching the real services tests need, and what to do when one is down.

A test whose service is unreachable is skipped with a line naming the service and
how to start it; with ORDERDESK_REQUIRE_SERVICES=1 (CI) it fails instead.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "ORDERDESK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ORDERDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
    "RabbitMQ": "rabbitmq-server -detached",
}


def services_required() -> bool:
    return os.environ.get("ORDERDESK_REQUIRE_SERVICES") == "1"


def unavailable(service: str, reason: object) -> None:
    message = f"{service} is not reachable ({reason}); start it with: {HOW_TO_START[service]}"
    if services_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

"""Readiness: can this process reach what its requests and its events need?"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor

from kombu.connection import Connection

from orderdesk.container import Container
from orderdesk.core.errors import ServiceUnavailable
from orderdesk.health.schemas import Readiness

READY_TIMEOUT_SECONDS = 2.0
# kombu connects synchronously. Its own thread, one: a broker that accepts and then
# hangs holds that one thread, later probes queue behind it and time out (not
# ready), and the event loop's default pool (DNS, Celery publishing) is never
# starved by probes that cannot be cancelled.
_BROKER_PROBE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-probe")


async def check_readiness(c: Container) -> Readiness:
    """Ready when the database answers (outside the pool, see `Database.ping`) and,
    with a broker configured, the broker accepts a connection; each within
    `READY_TIMEOUT_SECONDS`."""
    checks: dict[str, Awaitable[None]] = {"database": c.database.ping()}
    if c.settings.broker_url is not None:
        loop = asyncio.get_running_loop()
        checks["broker"] = loop.run_in_executor(
            _BROKER_PROBE, _connect_to_broker, c.settings.broker_url
        )
    results = await asyncio.gather(*(_within_timeout(check) for check in checks.values()))
    down = [name for name, ok in zip(checks, results, strict=True) if not ok]
    if down:
        raise ServiceUnavailable(f"Unreachable: {', '.join(down)}.")
    return Readiness(broker="ok" if "broker" in checks else None)


async def _within_timeout(check: Awaitable[None]) -> bool:
    try:
        await asyncio.wait_for(check, timeout=READY_TIMEOUT_SECONDS)
    except Exception:  # any failure to reach a dependency means not ready
        return False
    return True


def _connect_to_broker(url: str) -> None:
    timeouts = {
        "socket_timeout": READY_TIMEOUT_SECONDS,  # Redis: reads as well as the connect
        "socket_connect_timeout": READY_TIMEOUT_SECONDS,
    }
    # kombu's constructor is not annotated.
    with Connection(  # type: ignore[no-untyped-call]
        url, connect_timeout=READY_TIMEOUT_SECONDS, transport_options=timeouts
    ) as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=READY_TIMEOUT_SECONDS
        )

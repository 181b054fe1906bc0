"""The outbox read straight from the database, from outside the processes."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine


def outbox_counts(database_url: str) -> dict[str, int]:
    """Outbox events by status."""

    async def count() -> dict[str, int]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text("SELECT status, count(*) FROM outbox_events GROUP BY status")
                )
                return {str(status): int(n) for status, n in rows.all()}
        finally:
            await engine.dispose()

    return asyncio.run(count())


def unfinished_events(database_url: str, limit: int = 20) -> list[dict[str, object]]:
    """Events not done, for reports: what is stuck, and why."""

    async def fetch() -> list[dict[str, object]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text(
                        "SELECT id, topic, handler, status, attempts, last_error"
                        " FROM outbox_events WHERE status <> 'done' LIMIT :limit"
                    ),
                    {"limit": limit},
                )
                return [dict(row._mapping) for row in rows]
        finally:
            await engine.dispose()

    return asyncio.run(fetch())


def wait_for_outbox_to_settle(database_url: str, *, timeout: float = 60.0) -> dict[str, int]:
    """Poll until no event is pending or running (or `timeout`); the counts."""
    deadline = time.monotonic() + timeout
    while True:
        counts = outbox_counts(database_url)
        busy = counts.get("pending", 0) + counts.get("running", 0)
        if not busy or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)

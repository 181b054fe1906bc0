"""The one query the kernel makes itself: writing the append-only rows a unit of work
has staged (audit entries, outbox events), one multi-row INSERT per table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession


async def insert_rows(
    session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    await session.exec(sa.insert(table), params=rows)

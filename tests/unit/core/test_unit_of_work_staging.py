"""Rows staged on a unit of work are written as one multi-row INSERT per table, whose
columns come from the first row: a row with other columns is refused, not truncated."""

from __future__ import annotations

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from orderdesk.core.audit import AuditLog
from orderdesk.core.uow import UnitOfWork

TABLE = AuditLog.__table__  # type: ignore[attr-defined]


def test_a_row_with_other_columns_is_refused() -> None:
    uow = UnitOfWork(session=AsyncSession())
    uow.stage(TABLE, {"action": "a", "entity_id": 1})
    uow.stage(TABLE, {"entity_id": 2, "action": "b"})  # the same columns, in any order

    with pytest.raises(ValueError, match="same columns"):
        uow.stage(TABLE, {"action": "b", "entity_id": 2, "actor_id": 3})

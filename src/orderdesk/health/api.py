"""Liveness and readiness for operators and orchestrators, outside `/api/v1`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from orderdesk.core.deps import ContainerDep
from orderdesk.core.errors import ServiceUnavailable

router = APIRouter(prefix="/health", tags=["health"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(c: ContainerDep) -> dict[str, str]:
    try:
        await asyncio.wait_for(c.database.ping(), timeout=READY_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure to reach the database means not ready
        raise ServiceUnavailable("The database is unreachable.") from exc
    return {"status": "ok", "database": "ok"}

"""Liveness and readiness for operators and orchestrators, outside `/api/v1`."""

from __future__ import annotations

from fastapi import APIRouter

from orderdesk.container import ContainerDep
from orderdesk.health import service as health_service
from orderdesk.health.schemas import Liveness, Readiness

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def check_liveness() -> Liveness:
    return Liveness()


@router.get("/ready", response_model_exclude_none=True)
async def check_readiness(c: ContainerDep) -> Readiness:
    """Ready when the database answers and, with a broker configured (CORE/FULL
    tiers), the broker accepts a connection: without it orders still commit, but
    nothing they cause is delivered until it is back."""
    return await health_service.check_readiness(c)

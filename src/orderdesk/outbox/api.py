from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from orderdesk.auth.dependencies import require
from orderdesk.auth.permissions import Permission, Principal
from orderdesk.core.deps import Cursor, Limit, ReplicaReadsDep, UnitOfWorkDep
from orderdesk.core.openapi import problems
from orderdesk.core.pagination import DEFAULT_LIMIT, InvalidCursor, Page
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.models import EventStatus
from orderdesk.outbox.schemas import EventPublic
from orderdesk.outbox.service import EventNotFailed, EventNotFound

router = APIRouter(prefix="/admin/events", tags=["admin"])
Admin = Annotated[Principal, Depends(require(Permission.EVENTS_MANAGE))]


@router.get("")
@problems(InvalidCursor)
async def list_events(
    _: Admin,
    reads: ReplicaReadsDep,
    status: EventStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[EventPublic]:
    """Outbox events; `status=failed` lists the dead letters."""
    return await outbox_service.list_events(reads, status=status, limit=limit, cursor=cursor)


@router.post("/{event_id}/retry")
@problems(EventNotFound, EventNotFailed)
async def retry_event(event_id: UUID, _: Admin, uow: UnitOfWorkDep) -> EventPublic:
    """Give a dead-lettered event a fresh set of attempts."""
    return await outbox_service.retry_event(uow, event_id=event_id)

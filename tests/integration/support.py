"""Reading what the API wrote, and creating accounts the API cannot (staff, admins)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import col, select

from orderdesk.auth import service as auth_service
from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from orderdesk.core.audit import AuditLog
from orderdesk.core.uow import unit_of_work
from orderdesk.users.models import User
from orderdesk.users.schemas import UserCreate
from tests.conftest import JobsRunningTransport
from tests.helpers import STRONG_PASSWORD, bearer, sign_in, unique_email


async def create_account(
    container: Container, role: Role, *, password: str = STRONG_PASSWORD
) -> User:
    data = UserCreate(email=unique_email(role.value), password=password, full_name="Team Member")
    async with unit_of_work(container.database) as uow:
        return await auth_service.register(uow, container, data=data, role=role)


async def signed_in_as(
    client: httpx.AsyncClient, container: Container, role: Role
) -> tuple[User, dict[str, str]]:
    """An account with `role`, signed in over the API: (user, auth headers)."""
    user = await create_account(container, role)
    tokens = await sign_in(client, user.email)
    return user, bearer(tokens)


async def users_count(container: Container) -> int:
    async with container.database.sessions() as session:
        return (await session.exec(select(func.count()).select_from(User))).one()


async def user_row(container: Container, user_id: UUID | str) -> User | None:
    """The stored row, deleted or not."""
    async with container.database.sessions() as session:
        return await session.get(User, UUID(str(user_id)))


async def audit_rows(container: Container, *, entity_id: UUID | str, action: str) -> list[AuditLog]:
    statement = (
        select(AuditLog)
        .where(AuditLog.entity_id == UUID(str(entity_id)), AuditLog.action == action)
        .order_by(col(AuditLog.occurred_at))
    )
    async with container.database.sessions() as session:
        return list((await session.exec(statement)).all())


def problem(response: httpx.Response) -> dict[str, Any]:
    """The body of a problem-details response, after checking its shape."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == response.status_code
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


class AddressedClients:
    """HTTP clients onto apps, each appearing to come from one client address. Given
    a container, the outbox is drained after every request, so mail is sent as the
    in-process runner would send it."""

    def __init__(self) -> None:
        self._open: list[httpx.AsyncClient] = []

    def at(
        self, app: FastAPI, address: str, *, container: Container | None = None
    ) -> httpx.AsyncClient:
        client_address = (address, 1234)
        transport = (
            httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client_address)
            if container is None
            else JobsRunningTransport(
                container=container, app=app, raise_app_exceptions=False, client=client_address
            )
        )
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self._open.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._open:
            await client.aclose()

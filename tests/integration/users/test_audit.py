"""The audit rows that sign-up and account changes write."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from tests.factories import (
    STRONG_PASSWORD,
    audit_rows,
    bearer,
    make_account,
    register,
    signed_in_as,
    signed_up,
    unique_email,
)

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
NEW_PASSWORD = "copper-lantern-meadow-92"


def request_id() -> str:
    return f"test-{uuid.uuid4().hex}"


# --- audit log -------------------------------------------------------------------------


async def test_sign_up_writes_an_audit_row(client: httpx.AsyncClient, container: Container) -> None:
    rid = request_id()

    response = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": STRONG_PASSWORD, "full_name": "Audited"},
        headers={"X-Request-ID": rid},
    )

    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    [row] = await audit_rows(container, entity_id=user_id, action="user.registered")
    assert str(row.actor_id) == user_id
    assert row.entity_type == "user"
    assert row.request_id == rid


@pytest.mark.parametrize(
    ("change", "action", "recorded"),
    [
        pytest.param(
            {"role": "staff"},
            "user.role_changed",
            {"role": {"from": "customer", "to": "staff"}},
            id="role-change",
        ),
        pytest.param(
            {"is_active": False},
            "user.activation_changed",
            {"is_active": {"from": True, "to": False}},
            id="deactivation",
        ),
    ],
)
async def test_an_admin_change_writes_an_audit_row(
    client: httpx.AsyncClient,
    container: Container,
    change: dict[str, Any],
    action: str,
    recorded: dict[str, Any],
) -> None:
    target = await register(client)
    admin, headers = await signed_in_as(client, container, Role.ADMIN)
    rid = request_id()

    await client.patch(
        f"{USERS}/{target['id']}",
        json=change,
        headers={**headers, "X-Request-ID": rid},
    )

    [row] = await audit_rows(container, entity_id=target["id"], action=action)
    assert row.actor_id == admin.id
    assert row.request_id == rid
    assert row.changes == recorded


async def test_a_patch_that_changes_nothing_writes_no_audit_row(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "customer", "is_active": True}, headers=headers
    )

    assert response.status_code == 200
    assert await audit_rows(container, entity_id=target["id"], action="user.role_changed") == []
    assert (
        await audit_rows(container, entity_id=target["id"], action="user.activation_changed") == []
    )


async def test_password_change_writes_an_audit_row(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)
    rid = request_id()

    await client.patch(
        ME,
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers={**bearer(tokens), "X-Request-ID": rid},
    )

    [row] = await audit_rows(container, entity_id=user["id"], action="user.password_changed")
    assert str(row.actor_id) == user["id"]
    assert row.request_id == rid


async def test_refused_password_change_writes_no_audit_row(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)

    await client.patch(
        ME,
        json={"current_password": "wrong-password", "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )

    assert await audit_rows(container, entity_id=user["id"], action="user.password_changed") == []


async def test_deletion_writes_an_audit_row(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)
    rid = request_id()

    await client.delete(ME, headers={**bearer(tokens), "X-Request-ID": rid})

    [row] = await audit_rows(container, entity_id=user["id"], action="user.deleted")
    assert str(row.actor_id) == user["id"]
    assert row.request_id == rid


async def test_accounts_made_by_the_service_are_audited_with_their_role(
    container: Container,
) -> None:
    admin = await make_account(container, Role.ADMIN)

    [row] = await audit_rows(container, entity_id=admin.id, action="user.registered")
    assert row.changes == {"role": "admin"}

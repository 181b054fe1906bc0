"""The users API: one's own profile, and staff and admin management of accounts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from orderdesk.auth.permissions import Role
from orderdesk.container import Container
from tests.helpers import STRONG_PASSWORD, bearer, register, signed_up, unique_email
from tests.integration.support import (
    audit_rows,
    create_account,
    error_fields,
    problem,
    signed_in_as,
    user_row,
    users_count,
)

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
NEW_PASSWORD = "copper-lantern-meadow-92"


def request_id() -> str:
    return f"test-{uuid.uuid4().hex}"


async def token_status(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    return response.status_code


async def list_all_pages(
    client: httpx.AsyncClient, headers: dict[str, str], *, limit: int
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(USERS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination never ended")


# --- own profile ---------------------------------------------------------------------


async def test_me_returns_the_callers_profile(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client, full_name="Ada Lovelace")

    response = await client.get(ME, headers=bearer(tokens))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user["id"]
    assert body["email"] == user["email"]
    assert body["full_name"] == "Ada Lovelace"
    assert body["role"] == "customer"
    assert body["is_active"] is True
    assert body["email_verified"] is False
    assert "password_hash" not in body


async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)

    assert response.status_code == 401
    assert problem(response)["code"] == "invalid_token"


async def test_patch_me_changes_the_full_name(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client, full_name="Old Name")

    response = await client.patch(ME, json={"full_name": "New Name"}, headers=bearer(tokens))

    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "New Name"
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.full_name == "New Name"


async def test_password_change_without_current_password_is_422_on_current_password(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)

    response = await client.patch(ME, json={"new_password": NEW_PASSWORD}, headers=bearer(tokens))

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "current_password_required"
    assert error_fields(body) == {"current_password"}
    assert await token_status(client, user["email"], NEW_PASSWORD) == 401
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 200


async def test_password_change_with_wrong_current_password_is_422_on_current_password(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)

    response = await client.patch(
        ME,
        json={"current_password": "not-the-password-at-all", "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )

    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "wrong_current_password"
    assert error_fields(body) == {"current_password"}
    assert await token_status(client, user["email"], NEW_PASSWORD) == 401
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 200


async def test_refused_password_change_keeps_the_name_sent_with_it(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client, full_name="Kept Name")

    response = await client.patch(
        ME,
        json={
            "full_name": "Lost Name",
            "current_password": "wrong-one",
            "new_password": NEW_PASSWORD,
        },
        headers=bearer(tokens),
    )

    assert response.status_code == 422
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.full_name == "Kept Name"


async def test_password_change_with_current_password_replaces_the_password(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)

    response = await client.patch(
        ME,
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )

    assert response.status_code == 200, response.text
    assert await token_status(client, user["email"], NEW_PASSWORD) == 200
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 401


async def test_delete_me_is_a_soft_delete_that_stops_sign_in(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)

    response = await client.delete(ME, headers=bearer(tokens))

    assert response.status_code == 204
    assert await token_status(client, user["email"], STRONG_PASSWORD) == 401
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.deleted_at is not None


async def test_delete_me_invalidates_the_callers_access_token(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))

    response = await client.get(ME, headers=bearer(tokens))

    assert response.status_code == 401


async def test_a_deleted_accounts_email_cannot_be_registered_again(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))
    before = await users_count(container)

    response = await client.post(
        "/api/v1/auth/register",
        json={"email": user["email"], "password": STRONG_PASSWORD, "full_name": "Someone Else"},
    )

    assert response.status_code == 409
    assert problem(response)["code"] == "email_taken"
    assert await users_count(container) == before


# --- registration and email case ------------------------------------------------------


async def test_registering_a_differently_cased_duplicate_email_is_409(
    client: httpx.AsyncClient, container: Container
) -> None:
    email = unique_email("case")
    await register(client, email=email)
    before = await users_count(container)

    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email.upper(), "password": STRONG_PASSWORD, "full_name": "Shouting"},
    )

    assert response.status_code == 409
    assert problem(response)["code"] == "email_taken"
    assert await users_count(container) == before


async def test_email_is_stored_lower_case(client: httpx.AsyncClient, container: Container) -> None:
    email = unique_email("mixed.case")

    user = await register(client, email=email.upper())

    assert user["email"] == email.lower()
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.email == email.lower()


async def test_sign_in_ignores_the_case_of_the_email(client: httpx.AsyncClient) -> None:
    user = await register(client)

    assert await token_status(client, user["email"].upper(), STRONG_PASSWORD) == 200


async def test_register_refuses_a_role_and_writes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    before = await users_count(container)

    response = await client.post(
        "/api/v1/auth/register",
        json={
            "email": unique_email(),
            "password": STRONG_PASSWORD,
            "full_name": "Would-be Admin",
            "role": "admin",
        },
    )

    assert response.status_code == 422
    assert "role" in error_fields(problem(response))
    assert await users_count(container) == before


async def test_register_refuses_is_active_and_writes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    before = await users_count(container)

    response = await client.post(
        "/api/v1/auth/register",
        json={
            "email": unique_email(),
            "password": STRONG_PASSWORD,
            "full_name": "Sneaky",
            "is_active": True,
        },
    )

    assert response.status_code == 422
    assert "is_active" in error_fields(problem(response))
    assert await users_count(container) == before


async def test_patch_me_refuses_a_role_and_changes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client, full_name="Plain Customer")

    response = await client.patch(
        ME, json={"full_name": "Promoted", "role": "admin"}, headers=bearer(tokens)
    )

    assert response.status_code == 422
    assert "role" in error_fields(problem(response))
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.role is Role.CUSTOMER
    assert stored.full_name == "Plain Customer"


async def test_patch_me_refuses_is_active_and_changes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    user, tokens = await signed_up(client, full_name="Plain Customer")

    response = await client.patch(
        ME, json={"full_name": "Renamed", "is_active": False}, headers=bearer(tokens)
    )

    assert response.status_code == 422
    assert "is_active" in error_fields(problem(response))
    stored = await user_row(container, user["id"])
    assert stored is not None
    assert stored.is_active is True
    assert stored.full_name == "Plain Customer"


# --- listing users ---------------------------------------------------------------------


async def test_customers_cannot_list_users(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)

    response = await client.get(USERS, headers=bearer(tokens))

    assert response.status_code == 403
    assert problem(response)["code"] == "forbidden"


async def test_staff_can_list_users(client: httpx.AsyncClient, container: Container) -> None:
    customer = await register(client)
    _, headers = await signed_in_as(client, container, Role.STAFF)

    response = await client.get(USERS, headers=headers)

    assert response.status_code == 200, response.text
    assert customer["id"] in {item["id"] for item in response.json()["items"]}


async def test_admins_can_list_users(client: httpx.AsyncClient, container: Container) -> None:
    customer = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.get(USERS, headers=headers)

    assert response.status_code == 200, response.text
    assert customer["id"] in {item["id"] for item in response.json()["items"]}


async def test_user_list_pages_return_every_user_exactly_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = [(await register(client))["id"] for _ in range(7)]
    _, headers = await signed_in_as(client, container, Role.STAFF)

    pages = await list_all_pages(client, headers, limit=3)

    ids = [item["id"] for page in pages for item in page]
    assert len(ids) == len(set(ids))
    assert set(created) <= set(ids)
    assert len(ids) == await users_count(container)
    assert all(len(page) == 3 for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= 3


async def test_user_list_is_in_creation_order(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = [(await register(client))["id"] for _ in range(4)]
    _, headers = await signed_in_as(client, container, Role.STAFF)

    pages = await list_all_pages(client, headers, limit=3)

    ids = [item["id"] for page in pages for item in page]
    assert [i for i in ids if i in created] == created


async def test_the_last_user_page_has_no_next_cursor(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, headers = await signed_in_as(client, container, Role.STAFF)
    total = await users_count(container)

    response = await client.get(USERS, params={"limit": total}, headers=headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == total
    assert response.json()["next_cursor"] is None


async def test_a_full_user_page_with_more_to_come_has_a_next_cursor(
    client: httpx.AsyncClient, container: Container
) -> None:
    await register(client)
    _, headers = await signed_in_as(client, container, Role.STAFF)

    response = await client.get(USERS, params={"limit": 1}, headers=headers)

    assert len(response.json()["items"]) == 1
    assert isinstance(response.json()["next_cursor"], str)


async def test_deleted_users_are_not_listed(
    client: httpx.AsyncClient, container: Container
) -> None:
    deleted, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))
    _, headers = await signed_in_as(client, container, Role.STAFF)

    pages = await list_all_pages(client, headers, limit=50)

    assert deleted["id"] not in {item["id"] for page in pages for item in page}


async def test_a_garbage_cursor_is_a_422_problem(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, headers = await signed_in_as(client, container, Role.STAFF)

    response = await client.get(USERS, params={"cursor": "not-a-cursor!!"}, headers=headers)

    assert response.status_code == 422
    assert error_fields(problem(response)) == {"cursor"}


# --- admin management ------------------------------------------------------------------


async def test_staff_cannot_change_a_users_role(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.STAFF)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "staff"}, headers=headers
    )

    assert response.status_code == 403
    assert problem(response)["code"] == "forbidden"
    stored = await user_row(container, target["id"])
    assert stored is not None
    assert stored.role is Role.CUSTOMER


async def test_customers_cannot_change_a_users_role(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, tokens = await signed_up(client)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "admin"}, headers=bearer(tokens)
    )

    assert response.status_code == 403
    assert problem(response)["code"] == "forbidden"
    stored = await user_row(container, target["id"])
    assert stored is not None
    assert stored.role is Role.CUSTOMER


async def test_an_admin_changes_a_users_role(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "staff"}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "staff"
    stored = await user_row(container, target["id"])
    assert stored is not None
    assert stored.role is Role.STAFF


async def test_a_role_change_ends_the_users_sessions(
    client: httpx.AsyncClient, container: Container
) -> None:
    target, tokens = await signed_up(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    await client.patch(f"{USERS}/{target['id']}", json={"role": "staff"}, headers=headers)

    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401


async def test_an_admin_deactivates_a_user_who_then_cannot_sign_in(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"is_active": False}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    stored = await user_row(container, target["id"])
    assert stored is not None
    assert stored.is_active is False
    assert await token_status(client, target["email"], STRONG_PASSWORD) == 401


async def test_an_admin_reactivates_a_user(client: httpx.AsyncClient, container: Container) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)
    await client.patch(f"{USERS}/{target['id']}", json={"is_active": False}, headers=headers)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"is_active": True}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert await token_status(client, target["email"], STRONG_PASSWORD) == 200


async def test_an_admin_cannot_change_their_own_role(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(f"{USERS}/{admin.id}", json={"role": "customer"}, headers=headers)

    assert response.status_code == 403
    assert problem(response)["code"] == "own_role_change"
    stored = await user_row(container, admin.id)
    assert stored is not None
    assert stored.role is Role.ADMIN


async def test_an_admin_cannot_deactivate_themselves(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(f"{USERS}/{admin.id}", json={"is_active": False}, headers=headers)

    assert response.status_code == 403
    assert problem(response)["code"] == "own_role_change"
    stored = await user_row(container, admin.id)
    assert stored is not None
    assert stored.is_active is True


async def test_patching_an_unknown_user_is_404(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{uuid.uuid4()}", json={"role": "staff"}, headers=headers
    )

    assert response.status_code == 404
    assert problem(response)["code"] == "user_not_found"


async def test_patching_a_deleted_user_is_404(
    client: httpx.AsyncClient, container: Container
) -> None:
    target, tokens = await signed_up(client)
    await client.delete(ME, headers=bearer(tokens))
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "staff"}, headers=headers
    )

    assert response.status_code == 404


async def test_patching_a_user_with_an_unknown_role_is_422(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    _, headers = await signed_in_as(client, container, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{target['id']}", json={"role": "superuser"}, headers=headers
    )

    assert response.status_code == 422
    assert error_fields(problem(response)) == {"role"}


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


async def test_role_change_writes_an_audit_row(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    admin, headers = await signed_in_as(client, container, Role.ADMIN)
    rid = request_id()

    await client.patch(
        f"{USERS}/{target['id']}",
        json={"role": "staff"},
        headers={**headers, "X-Request-ID": rid},
    )

    [row] = await audit_rows(container, entity_id=target["id"], action="user.role_changed")
    assert row.actor_id == admin.id
    assert row.request_id == rid
    assert row.changes == {"role": {"from": "customer", "to": "staff"}}


async def test_deactivation_writes_an_audit_row(
    client: httpx.AsyncClient, container: Container
) -> None:
    target = await register(client)
    admin, headers = await signed_in_as(client, container, Role.ADMIN)
    rid = request_id()

    await client.patch(
        f"{USERS}/{target['id']}",
        json={"is_active": False},
        headers={**headers, "X-Request-ID": rid},
    )

    [row] = await audit_rows(container, entity_id=target["id"], action="user.activation_changed")
    assert row.actor_id == admin.id
    assert row.request_id == rid
    assert row.changes == {"is_active": {"from": True, "to": False}}


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
    admin = await create_account(container, Role.ADMIN)

    [row] = await audit_rows(container, entity_id=admin.id, action="user.registered")
    assert row.changes == {"role": "admin"}

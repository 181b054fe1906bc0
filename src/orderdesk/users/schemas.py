from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from orderdesk.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from orderdesk.auth.permissions import Role
from orderdesk.core.schemas import JsonBool, StrictModel
from orderdesk.core.text import NOT_BLANK, SINGLE_LINE
from orderdesk.users.models import User


def normalize_email(value: str) -> str:
    """Validate syntax (no DNS lookups) and normalise; the whole address is lower-cased
    so that uniqueness and sign-in ignore case."""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        domain = value.rpartition("@")[2].rstrip(".").lower()
        if domain.rpartition(".")[2] in SPECIAL_USE_DOMAIN_NAMES:
            # Well-formed, but reserved (RFC 6761): a rule no schema format states, so
            # it has a type of its own (docs/api.md, "Rules the schema cannot express").
            raise PydanticCustomError("email_reserved_domain", str(exc)) from exc
        raise ValueError(str(exc)) from exc
    return result.normalized.lower()


# RFC 5321's limit for a whole address; the column holds 320.
MAX_EMAIL_LENGTH = 254
MAX_FULL_NAME_LENGTH = 200
Email = Annotated[
    str,
    Field(max_length=MAX_EMAIL_LENGTH, json_schema_extra={"format": "email"}),
    SINGLE_LINE,
    AfterValidator(normalize_email),
]
Password = Annotated[
    str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH), SINGLE_LINE
]
# A password as typed at sign-in or to confirm a change: no strength rules (it may
# predate them), but the same bound, checked before anything hashes it.
PresentedPassword = Annotated[str, Field(max_length=MAX_PASSWORD_LENGTH), SINGLE_LINE]
FullName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_FULL_NAME_LENGTH),
    SINGLE_LINE,
    NOT_BLANK,
]


class UserCreate(StrictModel):
    email: Email
    password: Password
    full_name: FullName


class UserSelfUpdate(StrictModel):
    full_name: FullName | None = None
    current_password: PresentedPassword | None = None
    new_password: Password | None = None


class UserAdminUpdate(StrictModel):
    role: Role | None = None
    is_active: JsonBool | None = None


class UserPublic(BaseModel):
    id: UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    email_verified: bool
    created_at: datetime

    @classmethod
    def from_user(cls, user: User) -> UserPublic:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            is_active=user.is_active,
            email_verified=user.email_verified_at is not None,
            created_at=user.created_at,
        )

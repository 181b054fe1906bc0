from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from orderdesk.core.schemas import StrictModel
from orderdesk.core.text import SINGLE_LINE
from orderdesk.users.schemas import Email, Password

MAX_OPAQUE_TOKEN_LENGTH = 256
OpaqueToken = Annotated[str, Field(min_length=16, max_length=MAX_OPAQUE_TOKEN_LENGTH), SINGLE_LINE]


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: UUID


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int

    @classmethod
    def from_issued(cls, issued: IssuedTokens) -> TokenPair:
        return cls(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            expires_in=issued.expires_in,
        )


class RefreshRequest(StrictModel):
    refresh_token: OpaqueToken


class LogoutRequest(StrictModel):
    refresh_token: OpaqueToken


class SessionPublic(BaseModel):
    csrf_token: str


class EmailVerification(StrictModel):
    token: OpaqueToken


class PasswordResetRequest(StrictModel):
    email: Email


class PasswordResetConfirm(StrictModel):
    token: OpaqueToken
    new_password: Password

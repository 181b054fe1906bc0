"""The OAuth2 password form (`/auth/token`, `/auth/session`) with bounded fields that
follow the one rule for text.

FastAPI's `OAuth2PasswordRequestForm` takes any string of any length: a NUL in the
username reached PostgreSQL (a 500) and a 1 MB password was hashed. The fields and
their names are the ones the OAuth2 password grant defines (RFC 6749 §4.3.2), so
`/docs` and OAuth2 clients work unchanged; the bounds are checked while the form is
parsed, before anything looks the account up or hashes the password.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form
from pydantic import BaseModel, Field

from orderdesk.auth.passwords import MAX_PASSWORD_LENGTH
from orderdesk.auth.schemas import MAX_OPAQUE_TOKEN_LENGTH
from orderdesk.core.text import SingleLineText
from orderdesk.users.schemas import MAX_EMAIL_LENGTH

MAX_SCOPE_LENGTH = 1024


class PasswordGrantForm(BaseModel):
    """The form fields of the OAuth2 password grant."""

    username: Annotated[
        SingleLineText,
        # FastAPI reads an empty form field as a missing one: at least one character.
        Field(min_length=1, max_length=MAX_EMAIL_LENGTH, description="The account's e-mail."),
    ]
    password: Annotated[
        SingleLineText,
        Field(
            min_length=1, max_length=MAX_PASSWORD_LENGTH, json_schema_extra={"format": "password"}
        ),
    ]
    # Accepted as the spec allows; this server has no client registry, so the client
    # fields are not used, and scopes are not granted separately. Not nullable: a form
    # has no null, and a client would send the word "null".
    grant_type: Literal["password"] = "password"
    scope: Annotated[SingleLineText, Field(max_length=MAX_SCOPE_LENGTH)] = ""
    client_id: Annotated[SingleLineText, Field(max_length=MAX_OPAQUE_TOKEN_LENGTH)] = ""
    client_secret: Annotated[
        SingleLineText,
        Field(max_length=MAX_OPAQUE_TOKEN_LENGTH, json_schema_extra={"format": "password"}),
    ] = ""


# A form model rather than loose form parameters: the document names its schema.
PasswordForm = Annotated[PasswordGrantForm, Form()]

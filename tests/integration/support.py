"""Deprecated re-exports, removed once the last importer moves: data makers are in
`tests/factories.py`, the other helpers in `tests/helpers.py`."""

from __future__ import annotations

from tests.factories import (
    audit_rows,
    signed_in_as,
    user_row,
    users_count,
)
from tests.factories import make_account as create_account
from tests.helpers import AddressedClients, error_fields, problem

__all__ = [
    "AddressedClients",
    "audit_rows",
    "create_account",
    "error_fields",
    "problem",
    "signed_in_as",
    "user_row",
    "users_count",
]

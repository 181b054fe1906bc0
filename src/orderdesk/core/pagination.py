"""Keyset (cursor) pagination: `?limit=&cursor=` → `{items, next_cursor}`.

A cursor is the sort key of the last item returned, base64url-encoded JSON, with the
name of the list that issued it (`"l"`): a cursor is refused by any other list, whose
keys would mean something else. Clients treat it as opaque. Pages stay stable while
rows are inserted, and a page costs an index range scan however deep it is, unlike
OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel

from orderdesk.core.errors import InvalidInput

T = TypeVar("T")


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    title = "The cursor is not one this list issued"

    def __init__(self) -> None:
        super().__init__(_NOT_OURS, field=["cursor"])


class HasId(Protocol):
    @property
    def id(self) -> UUID: ...


R = TypeVar("R", bound=HasId)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 512


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        """`Page[ProductPublic]` is `ProductPage` in the API document."""
        item = getattr(params[0], "__name__", str(params[0]))
        return f"{item.removesuffix('Public')}Page"


_NOT_OURS = "The cursor is not one this list issued."


def encode_cursor(key: dict[str, Any], *, kind: str) -> str:
    assert "l" not in key, "'l' is the cursor's list"
    raw = json.dumps({**key, "l": kind}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, kind: str) -> dict[str, Any]:
    """The key `encode_cursor` was given, if the cursor is one the `kind` list issued."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(key, dict) or key.pop("l", None) != kind:
        raise InvalidCursor()
    return key


def decode_id_cursor(cursor: str | None, *, kind: str) -> UUID | None:
    """The id a page continues after, for lists sorted by (UUIDv7) id."""
    if cursor is None:
        return None
    try:
        return UUID(str(decode_cursor(cursor, kind=kind)["id"]))
    except (KeyError, ValueError) as exc:
        raise InvalidCursor() from exc


def page_by_id(rows: Sequence[R], *, limit: int, item: Callable[[R], T], kind: str) -> Page[T]:
    """Build a page from `limit + 1` rows sorted by id: the extra row only says that
    another page exists."""
    items = [item(row) for row in rows[:limit]]
    more = len(rows) > limit
    next_cursor = encode_cursor({"id": str(rows[limit - 1].id)}, kind=kind) if more else None
    return Page(items=items, next_cursor=next_cursor)

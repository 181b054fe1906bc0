"""Cursors: opaque to clients, exact for the server, and garbage is a 422 not a 500."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.core.errors import InvalidInput
from orderdesk.core.ids import new_id
from orderdesk.core.pagination import (
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    page_by_id,
)


@dataclass(frozen=True)
class Row:
    id: UUID


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


json_keys = st.dictionaries(
    st.text(max_size=20).filter(lambda name: name != "l"),  # "l" names the list
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40)),
    max_size=5,
)


@given(json_keys)
def test_a_cursor_decodes_to_the_key_it_encodes(key: dict[str, Any]) -> None:
    assert decode_cursor(encode_cursor(key, kind="t"), kind="t") == key


@given(json_keys)
def test_a_cursor_is_url_safe_without_padding(key: dict[str, Any]) -> None:
    cursor = encode_cursor(key, kind="t")

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_an_id_cursor_round_trips_the_id() -> None:
    row_id = new_id()

    assert decode_id_cursor(encode_cursor({"id": str(row_id)}, kind="t"), kind="t") == row_id


def test_no_cursor_means_the_first_page() -> None:
    assert decode_id_cursor(None, kind="t") is None


GARBAGE = {
    "not-base64": "!!!not a cursor!!!",
    "bad-padding": "a",
    "not-json": b64(b"definitely not json"),
    "not-utf8": b64(b"\xff\xfe\xfd"),
    "json-list": b64(b'["id"]'),
    "json-string": b64(b'"id"'),
    "json-number": b64(b"42"),
    "empty": "",
}


@pytest.mark.parametrize("cursor", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_garbage_cursor_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor, kind="t")

    assert caught.value.field == ["cursor"]


ID_GARBAGE = {
    **GARBAGE,
    "no-id": encode_cursor({"after": "x"}, kind="t"),
    "id-not-a-uuid": encode_cursor({"id": "yesterday"}, kind="t"),
    "id-a-number": encode_cursor({"id": 7}, kind="t"),
    "id-null": encode_cursor({"id": None}, kind="t"),
}


@pytest.mark.parametrize("cursor", ID_GARBAGE.values(), ids=ID_GARBAGE.keys())
def test_a_garbage_id_cursor_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_id_cursor(cursor, kind="t")

    assert caught.value.field == ["cursor"]


@given(st.one_of(st.text(max_size=512), st.binary(max_size=384).map(b64)))
def test_any_string_is_either_a_cursor_or_invalid_input(cursor: str) -> None:
    with contextlib.suppress(InvalidInput):
        decode_id_cursor(cursor, kind="t")


def test_a_page_with_more_rows_than_the_limit_points_past_its_last_item() -> None:
    rows = [Row(new_id()) for _ in range(4)]

    page = page_by_id(rows, limit=3, item=lambda row: row.id, kind="t")

    assert page.items == [row.id for row in rows[:3]]
    assert page.next_cursor is not None
    assert decode_id_cursor(page.next_cursor, kind="t") == rows[2].id


def test_a_page_with_no_more_rows_has_no_next_cursor() -> None:
    rows = [Row(new_id()) for _ in range(3)]

    page = page_by_id(rows, limit=3, item=lambda row: row.id, kind="t")

    assert page.items == [row.id for row in rows]
    assert page.next_cursor is None


def test_an_empty_page_has_no_next_cursor() -> None:
    page = page_by_id([], limit=3, item=lambda row: row.id, kind="t")

    assert page.items == []
    assert page.next_cursor is None


def test_a_cursor_from_one_list_is_refused_by_another() -> None:
    cursor = encode_cursor({"id": str(new_id())}, kind="orders")

    with pytest.raises(InvalidInput) as caught:
        decode_id_cursor(cursor, kind="users")

    assert caught.value.field == ["cursor"]


def test_a_cursor_without_a_list_is_refused() -> None:
    with pytest.raises(InvalidInput):
        decode_id_cursor(b64(f'{{"id":"{new_id()}"}}'.encode()), kind="users")


def test_a_deeply_nested_cursor_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(b64(b"[" * 100_000), kind="t")

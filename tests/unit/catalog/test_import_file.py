"""An import file as a whole: the cap on reported problems, encoding, and the format
taken from the content type or the file suffix."""

from __future__ import annotations

from typing import Any

import pytest

from orderdesk.catalog.errors import ImportRejected
from orderdesk.catalog.importing import (
    MAX_REPORTED_ERRORS,
    ImportFormat,
    decode_upload,
    read_rows,
    validate_rows,
)
from orderdesk.catalog.schemas import ProductCreate

CSV = ImportFormat.CSV
JSONL = ImportFormat.JSONL


def parse(text: str, fmt: ImportFormat) -> list[ProductCreate]:
    return validate_rows(read_rows(decode_upload(text.encode()), fmt))


def rejected(text: str, fmt: ImportFormat) -> list[dict[str, Any]]:
    with pytest.raises(ImportRejected) as caught:
        parse(text, fmt)
    return caught.value.errors


# --- the whole file ---------------------------------------------------------------


def test_report_is_capped_at_the_first_hundred_problems() -> None:
    text = "sku,name,price_amount,currency\n" + "A,,1,EUR\n" * (MAX_REPORTED_ERRORS + 50)

    errors = rejected(text, CSV)

    assert len(errors) == MAX_REPORTED_ERRORS
    assert errors[0]["line"] == 2


def test_upload_that_is_not_utf8_is_rejected_whole() -> None:
    with pytest.raises(ImportRejected) as caught:
        decode_upload("sku,name\nA,Caf\u00e9\n".encode("latin-1"))

    assert caught.value.errors == [{"line": None, "field": None, "message": "not UTF-8"}]


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/csv", CSV),
        ("text/csv; charset=utf-8", CSV),
        ("TEXT/CSV", CSV),
        ("application/x-ndjson", JSONL),
        ("application/jsonl", JSONL),
        ("application/json", None),
        ("text/plain", None),
        (None, None),
    ],
)
def test_format_follows_the_content_type(
    content_type: str | None, expected: ImportFormat | None
) -> None:
    assert ImportFormat.from_content_type(content_type) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("products.csv", CSV),
        ("PRODUCTS.CSV", CSV),
        ("products.jsonl", JSONL),
        ("products.ndjson", JSONL),
        ("products.json", None),
        ("products.txt", None),
    ],
)
def test_format_follows_the_file_suffix(name: str, expected: ImportFormat | None) -> None:
    assert ImportFormat.from_filename(name) is expected

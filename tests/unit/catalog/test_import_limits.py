"""Import limits: a CSV field over the csv module's limit, a JSON line too long or
nested too deep, and a file without rows are each a reported refusal, never an
unhandled error."""

from __future__ import annotations

import csv
import json

import pytest

from orderdesk.catalog.errors import ImportEmpty, ImportRejected
from orderdesk.catalog.importing import (
    MAX_JSON_DEPTH,
    MAX_JSON_LINE_LENGTH,
    ImportFormat,
    parse_upload,
)

CSV = ImportFormat.CSV
JSONL = ImportFormat.JSONL
HEADER = "sku,name,description,price_amount,currency,stock,is_active\n"
ROW = '{"sku": "MUG", "name": "Mug", "price": {"amount": 100, "currency": "EUR"}}'


def rejected(content: str, fmt: ImportFormat) -> list[tuple[int | None, str | None]]:
    with pytest.raises(ImportRejected) as caught:
        parse_upload(content.encode(), fmt)
    return [(error["line"], error["field"]) for error in caught.value.errors]


def test_a_csv_field_over_the_csv_field_limit_names_its_line() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    content = HEADER + "A,Mug,,100,EUR,1,true\n" + f'B,Mug,"{huge}",100,EUR,1,true\n'

    assert rejected(content, CSV) == [(3, None)]


def test_a_json_line_nested_past_the_limit_names_its_line() -> None:
    nested = '{"sku": "DEEP", "x": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}"

    assert rejected(f"{ROW}\n{nested}\n", JSONL) == [(2, None)]


def test_a_json_line_deeper_than_the_interpreter_can_parse_names_its_line() -> None:
    deep = "[" * 200_000 + "]" * 200_000

    assert rejected(f"{ROW}\n{deep}\n", JSONL) == [(2, None)]


def test_a_json_line_nested_to_the_limit_is_parsed() -> None:
    # The limit counts the row object itself: one level for it, the rest for a value.
    value = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    line = '{"sku": "OK", "name": "Mug", "price": {"amount": 1, "currency": "EUR"}, "x": '
    line += value + "}"

    # Parsed, then refused by the schema for its unknown field, not for its depth.
    assert rejected(line + "\n", JSONL) == [(1, "x")]


def test_a_json_line_over_the_length_limit_names_its_line() -> None:
    long_row = json.dumps({"sku": "LONG", "description": "d" * MAX_JSON_LINE_LENGTH})

    assert rejected(f"{ROW}\n{long_row}\n", JSONL) == [(2, None)]


@pytest.mark.parametrize(
    ("content", "fmt"),
    [("", CSV), (HEADER, CSV), ("[]", CSV), ("", JSONL), ("\n\n  \n", JSONL)],
    ids=["csv-empty", "csv-header-only", "csv-brackets", "jsonl-empty", "jsonl-blank-lines"],
)
def test_a_file_without_rows_is_an_empty_import(content: str, fmt: ImportFormat) -> None:
    with pytest.raises(ImportEmpty) as caught:
        parse_upload(content.encode(), fmt)

    assert (caught.value.status, caught.value.code) == (422, "import_empty")


def test_a_json_array_line_is_a_refused_row_not_an_empty_import() -> None:
    assert rejected("[]\n", JSONL) == [(1, None)]


def test_a_json_integer_past_pythons_digit_limit_names_its_line() -> None:
    row = '{"sku": "BIG", "name": "Mug", "stock": ' + "9" * 5000 + "}"

    assert rejected(ROW + "\n" + row + "\n", JSONL) == [(2, None)]


def test_validation_stops_at_the_hundredth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from orderdesk.catalog import importing

    validated: list[object] = []
    real = importing._ROW.validate_python

    def counting(raw: object, **kwargs: object) -> object:
        validated.append(raw)
        return real(raw, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importing._ROW, "validate_python", counting)
    content = "sku,name\n" + "x\n" * 10_000

    assert len(rejected(content, CSV)) == importing.MAX_REPORTED_ERRORS
    assert len(validated) <= importing.MAX_REPORTED_ERRORS

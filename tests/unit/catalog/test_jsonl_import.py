"""Parsing a JSON-lines import file: flat and nested prices, bad lines, unknown keys."""

from __future__ import annotations

from typing import Any

import pytest

from orderdesk.catalog.errors import ImportRejected
from orderdesk.catalog.importing import (
    ImportFormat,
    decode_upload,
    read_rows,
    validate_rows,
)
from orderdesk.catalog.schemas import ProductCreate
from orderdesk.core.money import Money

JSONL = ImportFormat.JSONL


def parse(text: str, fmt: ImportFormat) -> list[ProductCreate]:
    return validate_rows(read_rows(decode_upload(text.encode()), fmt))


def rejected(text: str, fmt: ImportFormat) -> list[dict[str, Any]]:
    with pytest.raises(ImportRejected) as caught:
        parse(text, fmt)
    return caught.value.errors


def bad_lines(errors: list[dict[str, Any]]) -> set[int | None]:
    return {error["line"] for error in errors}


# --- JSON lines ---------------------------------------------------------------------


def test_jsonl_flat_rows_take_price_amount_and_currency_keys() -> None:
    text = '{"sku": "A", "name": "Mug", "price_amount": 1299, "currency": "EUR", "stock": 4}\n'

    assert parse(text, JSONL) == [
        ProductCreate(sku="A", name="Mug", price=Money(amount=1299, currency="EUR"), stock=4)
    ]


def test_jsonl_nested_price_object_is_read_as_is() -> None:
    text = (
        '{"sku": "A", "name": "Mug", "price": {"amount": 1299, "currency": "GBP"},'
        ' "is_active": false}\n'
    )

    assert parse(text, JSONL) == [
        ProductCreate(
            sku="A", name="Mug", price=Money(amount=1299, currency="GBP"), is_active=False
        )
    ]


def test_jsonl_flat_and_nested_rows_can_be_mixed_in_one_file() -> None:
    text = (
        '{"sku": "A", "name": "Mug", "price_amount": 1, "currency": "EUR"}\n'
        '{"sku": "B", "name": "Cap", "price": {"amount": 2, "currency": "EUR"}}\n'
    )

    assert [product.price.amount for product in parse(text, JSONL)] == [1, 2]


def test_jsonl_flat_boolean_strings_are_understood() -> None:
    text = '{"sku": "A", "name": "Mug", "price_amount": 1, "currency": "EUR", "is_active": "no"}\n'

    assert parse(text, JSONL)[0].is_active is False


def test_jsonl_line_that_is_not_json_is_a_bad_row() -> None:
    text = (
        '{"sku": "A", "name": "Mug", "price_amount": 1, "currency": "EUR"}\n'
        '{"sku": "B", "name": oops}\n'
    )

    errors = rejected(text, JSONL)

    assert len(errors) == 1
    assert errors[0]["line"] == 2
    assert errors[0]["field"] is None
    assert errors[0]["message"].startswith("not valid JSON")


def test_jsonl_line_that_is_json_but_not_an_object_is_a_bad_row() -> None:
    errors = rejected('["A", "Mug", 1, "EUR"]\n', JSONL)

    assert bad_lines(errors) == {1}


def test_jsonl_blank_lines_are_skipped_but_still_counted() -> None:
    text = (
        '{"sku": "A", "name": "Mug", "price_amount": 1, "currency": "EUR"}\n'
        "\n"
        "   \n"
        '{"sku": "B", "name": "", "price_amount": 1, "currency": "EUR"}\n'
    )

    errors = rejected(text, JSONL)

    assert [(error["line"], error["field"]) for error in errors] == [(4, "name")]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        pytest.param(
            '{"sku": "A", "name": "Mug", "price_amount": 1, "currency": "EUR", "colour": "red"}',
            "colour",
            id="unknown-key",
        ),
        pytest.param(
            '{"sku": "A", "name": "Mug", "price": {"amount": 1, "currency": "EUR", "tax": 0}}',
            "price.tax",
            id="unknown-key-inside-nested-price",
        ),
        pytest.param(
            '{"sku": "A", "name": "Mug", "price": {"amount": 1, "currency": "EUR"},'
            ' "price_amount": 5}',
            "price_amount",
            id="nested-price-and-flat-amount-together",
        ),
        pytest.param(
            '{"sku": "A", "name": "Mug", "price": {"amount": 1, "currency": "ZZZ"}}',
            "price.currency",
            id="currency-not-iso-4217",
        ),
    ],
)
def test_a_jsonl_line_with_a_bad_key_is_rejected_naming_the_key(line: str, field: str) -> None:
    errors = rejected(line + "\n", JSONL)

    assert [(error["line"], error["field"]) for error in errors] == [(1, field)]


def test_jsonl_crlf_line_endings_are_accepted() -> None:
    text = (
        '{"sku": "A", "name": "Mug", "price_amount": 1, "currency": "EUR"}\r\n'
        '{"sku": "B", "name": "Cap", "price_amount": 2, "currency": "EUR"}\r\n'
    )

    assert [product.sku for product in parse(text, JSONL)] == ["A", "B"]

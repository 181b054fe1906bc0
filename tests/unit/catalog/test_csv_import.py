"""Parsing a CSV import file: rows to products, defaults, line numbers of bad rows,
booleans, currencies, SKUs, and duplicate SKUs."""

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

CSV = ImportFormat.CSV
JSONL = ImportFormat.JSONL
HEADER = "sku,name,description,price_amount,currency,stock,is_active\n"


def parse(text: str, fmt: ImportFormat) -> list[ProductCreate]:
    return validate_rows(read_rows(decode_upload(text.encode()), fmt))


def rejected(text: str, fmt: ImportFormat) -> list[dict[str, Any]]:
    with pytest.raises(ImportRejected) as caught:
        parse(text, fmt)
    return caught.value.errors


def bad_lines(errors: list[dict[str, Any]]) -> set[int | None]:
    return {error["line"] for error in errors}


# --- CSV ------------------------------------------------------------------------


def test_csv_rows_become_products_with_price_from_amount_and_currency_columns() -> None:
    text = HEADER + "MUG-1,Blue mug,Enamel,1299,EUR,40,true\nCAP,Cap,,1899,USD,3,false\n"

    products = parse(text, CSV)

    assert products == [
        ProductCreate(
            sku="MUG-1",
            name="Blue mug",
            description="Enamel",
            price=Money(amount=1299, currency="EUR"),
            stock=40,
            is_active=True,
        ),
        ProductCreate(
            sku="CAP",
            name="Cap",
            description="",
            price=Money(amount=1899, currency="USD"),
            stock=3,
            is_active=False,
        ),
    ]


def test_csv_optional_columns_take_their_defaults() -> None:
    products = parse("sku,name,price_amount,currency\nMUG,Mug,100,EUR\n", CSV)

    assert len(products) == 1
    assert (products[0].stock, products[0].is_active, products[0].description) == (0, True, "")


def test_csv_header_only_is_an_empty_import() -> None:
    assert parse(HEADER, CSV) == []


def test_csv_byte_order_mark_is_ignored() -> None:
    content = "\ufeffsku,name,price_amount,currency\nMUG,Mug,100,EUR\n".encode()

    products = validate_rows(read_rows(decode_upload(content), CSV))

    assert [product.sku for product in products] == ["MUG"]


def test_csv_bad_row_is_reported_with_its_line_number_counting_the_header() -> None:
    text = HEADER + "A,Mug,,100,EUR,1,true\nB,,,100,EUR,1,true\nC,Cap,,100,EUR,1,true\n"

    errors = rejected(text, CSV)

    assert errors == [
        {"line": 3, "field": "name", "message": "String should have at least 1 character"}
    ]


def test_csv_every_bad_row_is_reported_not_only_the_first() -> None:
    text = (
        HEADER
        + "A,Mug,,100,EUR,1,true\n"  # line 2
        + "B,Mug,,-1,EUR,1,true\n"  # line 3: negative price
        + "C,Mug,,100,EUR,1,true\n"  # line 4
        + "D,Mug,,100,EUR,lots,true\n"  # line 5: stock not a number
    )

    errors = rejected(text, CSV)

    assert {(error["line"], error["field"]) for error in errors} == {
        (3, "price.amount"),
        (5, "stock"),
    }


def test_csv_line_numbers_count_physical_lines_of_quoted_multiline_values() -> None:
    text = (
        HEADER
        + 'A,Mug,"first line\nsecond line",100,EUR,1,true\n'  # lines 2-3
        + "B,Mug,,100,EUR,-5,true\n"  # line 4
    )

    errors = rejected(text, CSV)

    assert bad_lines(errors) == {4}


def test_csv_blank_lines_are_skipped_but_still_counted() -> None:
    text = HEADER + "A,Mug,,100,EUR,1,true\n\n\nB,Mug,,100,EUR,-5,true\n"

    errors = rejected(text, CSV)

    assert bad_lines(errors) == {5}


@pytest.mark.parametrize(
    ("row", "field"),
    [
        # Money is integer minor units.
        pytest.param("A,Mug,,12.99,EUR,1,true", "price.amount", id="price-in-major-units"),
        pytest.param("A,Mug,,100,EUR,1,maybe", "is_active", id="unrecognised-boolean"),
    ],
)
def test_a_csv_cell_of_the_wrong_kind_is_a_bad_row(row: str, field: str) -> None:
    errors = rejected(HEADER + row + "\n", CSV)

    assert [(error["line"], error["field"]) for error in errors] == [(2, field)]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("y", True),
        ("t", True),
        (" True ", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("n", False),
        ("f", False),
    ],
)
def test_csv_boolean_spellings_are_understood(cell: str, expected: bool) -> None:
    products = parse(HEADER + f"A,Mug,,100,EUR,1,{cell}\n", CSV)

    assert products[0].is_active is expected


def test_csv_unknown_column_is_rejected() -> None:
    errors = rejected("sku,name,price_amount,currency,colour\nA,Mug,100,EUR,red\n", CSV)

    assert errors == [{"line": 2, "field": "colour", "message": "Extra inputs are not permitted"}]


def test_csv_row_with_more_values_than_the_header_has_columns_is_rejected() -> None:
    # The stray value has no column to go to; dropping it silently would import
    # something other than what the file says.
    errors = rejected("sku,name,price_amount,currency\nA,Mug,100,EUR,5\n", CSV)

    assert bad_lines(errors) == {2}


def test_csv_row_with_fewer_values_than_the_header_is_rejected() -> None:
    errors = rejected("sku,name,price_amount,currency\nA,Mug,100\n", CSV)

    assert [(error["line"], error["field"]) for error in errors] == [(2, "price.currency")]


@pytest.mark.parametrize("currency", ["ZZZ", "QQQ"])
def test_currency_that_is_not_iso_4217_is_rejected(currency: str) -> None:
    errors = rejected(f"sku,name,price_amount,currency\nA,Mug,100,{currency}\n", CSV)

    assert [(error["line"], error["field"]) for error in errors] == [(2, "price.currency")]
    assert "ISO 4217" in errors[0]["message"]


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R"])
def test_currency_must_be_three_upper_case_letters(currency: str) -> None:
    errors = rejected(f"sku,name,price_amount,currency\nA,Mug,100,{currency}\n", CSV)

    assert [(error["line"], error["field"]) for error in errors] == [(2, "price.currency")]


@pytest.mark.parametrize("sku", ["has space", "-leading-dash", "slash/sku", "x" * 65])
def test_malformed_sku_is_rejected(sku: str) -> None:
    errors = rejected(f"sku,name,price_amount,currency\n{sku},Mug,100,EUR\n", CSV)

    assert [(error["line"], error["field"]) for error in errors] == [(2, "sku")]


# --- duplicates -------------------------------------------------------------------


def test_duplicate_sku_in_a_file_is_a_bad_row_naming_the_first_occurrence() -> None:
    text = HEADER + "A,Mug,,100,EUR,1,true\nB,Cap,,100,EUR,1,true\nA,Tee,,100,EUR,1,true\n"

    errors = rejected(text, CSV)

    assert errors == [{"line": 4, "field": "sku", "message": "SKU A also appears on line 2"}]


def test_sku_duplicate_after_surrounding_whitespace_is_stripped() -> None:
    text = '{"sku": "A", "name": "Mug", "price_amount": 1, "currency": "EUR"}\n'
    text += '{"sku": "  A ", "name": "Cap", "price_amount": 1, "currency": "EUR"}\n'

    errors = rejected(text, JSONL)

    assert [(error["line"], error["field"]) for error in errors] == [(2, "sku")]


def test_every_repeat_of_a_sku_is_reported() -> None:
    text = HEADER + "A,Mug,,100,EUR,1,true\nA,Cap,,100,EUR,1,true\nA,Tee,,100,EUR,1,true\n"

    errors = rejected(text, CSV)

    assert bad_lines(errors) == {3, 4}

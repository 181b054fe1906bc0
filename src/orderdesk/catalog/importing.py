"""Reading product files (CSV or JSON lines) and validating every row before
anything is written: a file with bad rows is rejected whole, naming each bad line.

Pure functions, no I/O: `parse_upload` is the one entry point for an uploaded body.
Limits (docs/api.md, "Limits"): a CSV field holds at most `csv.field_size_limit()`
characters (131072); a JSON line at most `MAX_JSON_LINE_LENGTH` characters, nested at
most `MAX_JSON_DEPTH` deep. Past them the line is reported, never an unhandled error.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from orderdesk.catalog.errors import ImportEmpty, ImportRejected
from orderdesk.catalog.schemas import ProductCreate

MAX_REPORTED_ERRORS = 100
MAX_JSON_LINE_LENGTH = 64 * 1024  # characters; a full product row is under 6000
MAX_JSON_DEPTH = 32  # a product row is 2 deep (the price object)
_ROW = TypeAdapter(ProductCreate)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class ImportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"

    @classmethod
    def from_content_type(cls, content_type: str | None) -> ImportFormat | None:
        kind = (content_type or "").split(";")[0].strip().lower()
        if kind in {"text/csv", "application/csv"}:
            return cls.CSV
        if kind in {"application/x-ndjson", "application/jsonl", "application/jsonlines"}:
            return cls.JSONL
        return None

    @classmethod
    def from_filename(cls, name: str) -> ImportFormat | None:
        lowered = name.lower()
        if lowered.endswith(".csv"):
            return cls.CSV
        if lowered.endswith((".jsonl", ".ndjson")):
            return cls.JSONL
        return None


def read_rows(lines: Iterable[str], fmt: ImportFormat) -> Iterator[tuple[int, Any]]:
    """(line number, raw row) pairs; a line that cannot be parsed yields an error marker."""
    if fmt is ImportFormat.CSV:
        yield from _csv_rows(lines)
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        raw = _json_row(line)
        if isinstance(raw, _Unparsable):
            yield number, raw
            continue
        yield number, _from_flat(raw) if isinstance(raw, dict) and "price" not in raw else raw


def parse_upload(content: bytes, fmt: ImportFormat) -> list[ProductCreate]:
    """An uploaded file's products, all validated; `ImportRejected` names the bad lines,
    `ImportEmpty` refuses a file without a single row."""
    products = validate_rows(read_rows(decode_upload(content), fmt))
    if not products:
        raise ImportEmpty()
    return products


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(lines)
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over the size limit, a NUL, a stray quote
            # The reader cannot resync after this: report the line the bad record
            # starts on (the reader has not counted it yet) and stop reading.
            yield reader.line_num + 1, _Unparsable(f"not valid CSV: {exc}")
            return
        if None in row:  # DictReader files surplus values under the key None
            yield reader.line_num, _Unparsable("more values than the header has columns")
        else:
            yield reader.line_num, _from_flat(row)


def _json_row(line: str) -> Any:
    if len(line) > MAX_JSON_LINE_LENGTH:
        return _Unparsable(f"a line may hold at most {MAX_JSON_LINE_LENGTH} characters")
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        return _Unparsable(f"not valid JSON: {exc.msg}")
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit limit
        return _Unparsable(f"not valid JSON: {exc}")
    except RecursionError:
        raw = None
    else:
        if _depth_within(raw, MAX_JSON_DEPTH):
            return raw
    return _Unparsable(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")


def _depth_within(value: Any, limit: int) -> bool:
    """Whether `value` nests at most `limit` containers deep; iterative, so a deep
    value cannot exhaust the stack here."""
    level = [value]
    for _ in range(limit):
        children: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        level = [item for item in children if isinstance(item, dict | list)]
        if not level:
            return True
    return False


def validate_rows(rows: Iterable[tuple[int, Any]]) -> list[ProductCreate]:
    """All rows, validated; raises `ImportRejected` listing bad lines (the first 100).
    Validation stops at the 100th error: the file is refused anyway, and a file of
    bad rows would otherwise hold an error object for every one of them."""
    valid: list[ProductCreate] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
        if isinstance(raw, _Unparsable):
            errors.append({"line": line, "field": None, "message": raw.reason})
            continue
        try:
            # Lenient: CSV cells are text, and JSON lines keep the import's old coercions.
            product = _ROW.validate_python(raw, strict=False)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or None
                errors.append({"line": line, "field": field, "message": error["msg"]})
            continue
        if product.sku in seen:
            message = f"SKU {product.sku} also appears on line {seen[product.sku]}"
            errors.append({"line": line, "field": "sku", "message": message})
            continue
        seen[product.sku] = line
        valid.append(product)
    if errors:
        raise ImportRejected(errors[:MAX_REPORTED_ERRORS])
    return valid


def decode_upload(content: bytes) -> Iterator[str]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected([{"line": None, "field": None, "message": "not UTF-8"}]) from exc
    return iter(io.StringIO(text, newline=""))


class _Unparsable:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _from_flat(row: dict[str, Any]) -> dict[str, Any]:
    """CSV columns (and flat JSON keys) `price_amount` and `currency` become `price`."""
    shaped = {k: v for k, v in row.items() if k not in {"price_amount", "currency", None}}
    if "price_amount" in row or "currency" in row:
        shaped["price"] = {"amount": row.get("price_amount"), "currency": row.get("currency")}
    active = shaped.get("is_active")
    if isinstance(active, str) and not active.strip():
        shaped.pop("is_active")  # an empty cell means the default: active
    elif isinstance(active, str) and active.strip().lower() in _TRUE | _FALSE:
        shaped["is_active"] = active.strip().lower() in _TRUE
    if shaped.get("description") is None:
        shaped.pop("description", None)
    return shaped

"""Reading product files (CSV or JSON lines) and validating every row before
anything is written: a file with bad rows is rejected whole, naming each bad line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from orderdesk.catalog.errors import ImportRejected
from orderdesk.catalog.schemas import ProductCreate

MAX_REPORTED_ERRORS = 100
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
        reader = csv.DictReader(lines)
        for row in reader:
            if None in row:  # DictReader files surplus values under the key None
                yield reader.line_num, _Unparsable("more values than the header has columns")
            else:
                yield reader.line_num, _from_flat(row)
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, _Unparsable(f"not valid JSON: {exc.msg}")
            continue
        yield number, _from_flat(raw) if isinstance(raw, dict) and "price" not in raw else raw


def validate_rows(rows: Iterable[tuple[int, Any]]) -> list[ProductCreate]:
    """All rows, validated; raises `ImportRejected` listing bad lines (the first 100)."""
    valid: list[ProductCreate] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        if isinstance(raw, _Unparsable):
            errors.append({"line": line, "field": None, "message": raw.reason})
            continue
        try:
            product = _ROW.validate_python(raw)
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


def parse_upload(content: bytes, fmt: ImportFormat) -> list[ProductCreate]:
    """Decode, parse and validate a whole upload. CPU-bound (seconds for tens of
    megabytes): the API runs it in a worker thread, off the event loop."""
    return validate_rows(read_rows(decode_upload(content), fmt))

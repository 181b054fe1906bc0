"""Base classes for API schemas."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    field_validator,
)


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so `role` or `is_active` smuggled into a
    sign-up or a profile update is a 422, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _not_nullable(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]
        options = field.get("anyOf")
        if options is None:
            continue
        kept = [option for option in options if option.get("type") != "null"]
        del field["anyOf"]
        field.update(kept[0] if len(kept) == 1 else {"anyOf": kept})


class PatchModel(StrictModel):
    """Partial updates: each field may be left out, but none may be sent as null
    (the columns behind them are required). The document says the same: no field of
    such a body is nullable."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_nullable)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


def _integral_float(value: Any) -> Any:
    # JSON Schema's `integer` includes 3.0; `strict` alone would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Integers and flags in request bodies take JSON's integers and booleans only: no
# "12", no 1 for true (FastAPI validates parsed JSON in Python mode, which coerces).
# Rows parsed from CSV cells are validated with `strict=False`, which lifts this.
# Both go after the field's bounds: `Annotated[int, Field(ge=1), STRICT, INTEGRAL]`
# (before them, the bounds would not reach the document as minimum and maximum).
STRICT = Strict()
INTEGRAL = BeforeValidator(_integral_float)
JsonBool = Annotated[bool, STRICT]


_RFC_3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}")


def _rfc_3339(value: Any) -> Any:
    # Pydantic would also read "0.5" as seconds since 1970; the document says
    # `format: date-time`, which is RFC 3339 text only.
    if not isinstance(value, datetime) and not (isinstance(value, str) and _RFC_3339.match(value)):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T12:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    # 9999-12-31T23:59:59-23:59 is a valid date-time that UTC cannot hold.
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is outside the range of dates this server stores") from exc


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc_3339), AfterValidator(_in_utc)]

"""Base classes for API schemas."""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


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

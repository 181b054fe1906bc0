"""Base classes for API schemas."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so `role` or `is_active` smuggled into a
    sign-up or a profile update is a 422, never silently ignored."""

    model_config = ConfigDict(extra="forbid")

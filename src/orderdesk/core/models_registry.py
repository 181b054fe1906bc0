"""Imports every table model so the metadata is complete for Alembic and tests."""

from sqlmodel import SQLModel

from orderdesk.auth import models as auth_models
from orderdesk.core import audit
from orderdesk.users import models as user_models

metadata = SQLModel.metadata

__all__ = ["audit", "auth_models", "metadata", "user_models"]

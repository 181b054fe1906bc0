"""Imports every table model so the metadata is complete for Alembic and tests."""

from sqlmodel import SQLModel

from orderdesk.auth import models as auth_models
from orderdesk.catalog import models as catalog_models
from orderdesk.core import audit, idempotency, outbox
from orderdesk.orders import models as order_models
from orderdesk.users import models as user_models
from orderdesk.webhooks import models as webhook_models

metadata = SQLModel.metadata

__all__ = [
    "audit",
    "auth_models",
    "catalog_models",
    "idempotency",
    "metadata",
    "order_models",
    "outbox",
    "user_models",
    "webhook_models",
]

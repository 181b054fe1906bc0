"""What every table shares: the metadata naming convention, aware UTC timestamps,
UUIDv7 keys, audit columns, optimistic locking and soft deletion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import declared_attr
from sqlmodel import Field, SQLModel

from orderdesk.core.clock import utcnow
from orderdesk.core.ids import new_id

# Stable constraint names, so migrations can drop and alter them on every backend.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are stored as
    naive UTC and made aware again when read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=nullable, index=index)


class Entity(SQLModel):
    """A UUIDv7 primary key."""

    id: UUID = Field(default_factory=new_id, primary_key=True)


class Audited(Entity):
    """Audit columns and an optimistic-locking version on every business table.

    `version` is SQLAlchemy's version counter: every UPDATE carries
    `WHERE version = <loaded>` and bumps it, so two writers that loaded the same row
    can never both win (the loser gets `ConcurrentUpdate`, a 409). `created_by` and
    `updated_by` are filled from the unit of work's actor when the session flushes.
    """

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    created_by: UUID | None = Field(default=None)
    updated_by: UUID | None = Field(default=None)
    version: int = Field(default=1, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class SoftDeletable(Audited):
    """An audited table whose rows are marked deleted, never removed; repositories
    exclude deleted rows by default."""

    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)

    soft_deletable: ClassVar[bool] = True

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field

from orderdesk.core.models import SoftDeletable


class Product(SoftDeletable, table=True):
    __tablename__ = "products"
    __table_args__ = (
        # The last line of defence against overselling: no code path can commit a
        # negative stock, whatever it does.
        sa.CheckConstraint("stock >= 0", name="stock_not_negative"),
        sa.CheckConstraint("price_amount >= 0", name="price_not_negative"),
    )

    sku: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200, index=True)
    description: str = Field(default="", max_length=5000)
    price_amount: int = Field(sa_type=sa.BigInteger, nullable=False)
    currency: str = Field(max_length=3, nullable=False)
    stock: int = Field(default=0, nullable=False)
    is_active: bool = Field(default=True, nullable=False)


class ProductSort(StrEnum):
    CREATED = "created"
    NAME = "name"
    PRICE = "price"


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """What a catalog page is filtered and sorted by."""

    q: str | None = None
    is_active: bool | None = None
    min_price: int | None = None
    max_price: int | None = None
    currency: str | None = None
    sort: ProductSort = ProductSort.CREATED

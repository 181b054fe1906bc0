from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from orderdesk.catalog.models import Product
from orderdesk.core.money import Money
from orderdesk.core.schemas import INTEGRAL, STRICT, JsonBool, PatchModel, StrictModel
from orderdesk.core.text import MULTI_LINE, NOT_BLANK, SINGLE_LINE

MAX_STOCK = 10**9
MAX_SKU_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 5000
MAX_SEARCH_LENGTH = 100
# No trimming: what the document's pattern allows is exactly what is stored.
Sku = Annotated[
    str,
    StringConstraints(max_length=MAX_SKU_LENGTH, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"),
    SINGLE_LINE,
]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH), SINGLE_LINE, NOT_BLANK]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH), MULTI_LINE]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK), STRICT, INTEGRAL]


class ProductCreate(StrictModel):
    sku: Sku
    name: Name
    description: Description = ""
    price: Money
    stock: Stock = 0
    is_active: JsonBool = True


class ProductUpdate(PatchModel):
    name: Name | None = None
    description: Description | None = None
    price: Money | None = None
    stock: Stock | None = None
    is_active: JsonBool | None = None


class ProductPublic(BaseModel):
    id: UUID
    sku: str
    name: str
    description: str
    price: Money
    stock: int
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_product(cls, product: Product) -> ProductPublic:
        return cls(
            id=product.id,
            sku=product.sku,
            name=product.name,
            description=product.description,
            price=Money(amount=product.price_amount, currency=product.currency),
            stock=product.stock,
            is_active=product.is_active,
            version=product.version,
            created_at=product.created_at,
            updated_at=product.updated_at,
        )


class ImportResult(BaseModel):
    rows: int
    created: int
    updated: int

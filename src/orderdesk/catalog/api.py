from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status

from orderdesk.auth.dependencies import OptionalUser, require
from orderdesk.auth.permissions import Permission, Principal
from orderdesk.catalog import service as catalog_service
from orderdesk.catalog.errors import ImportEmpty, ImportRejected, ProductNotFound, SkuTaken
from orderdesk.catalog.importing import ImportFormat
from orderdesk.catalog.models import ProductFilter, ProductSort
from orderdesk.catalog.schemas import (
    MAX_SEARCH_LENGTH,
    ImportResult,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
)
from orderdesk.core.deps import Cursor, Limit, ReplicaReadsDep, UnitOfWorkDep
from orderdesk.core.errors import (
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    UnsupportedMediaType,
)
from orderdesk.core.money import MAX_AMOUNT, CurrencyCode
from orderdesk.core.openapi import links, problems
from orderdesk.core.pagination import DEFAULT_LIMIT, InvalidCursor, Page
from orderdesk.core.text import SingleLineText
from orderdesk.core.versioning import IfMatch, etag, optional_if_match, required_if_match

router = APIRouter(prefix="/products", tags=["catalog"])
CatalogManager = Annotated[Principal, Depends(require(Permission.CATALOG_MANAGE))]
RequiredIfMatch = Annotated[IfMatch, Depends(required_if_match)]
OptionalIfMatch = Annotated[IfMatch, Depends(optional_if_match)]
Price = Annotated[int | None, Query(ge=0, le=MAX_AMOUNT)]
_PRODUCT = {"product_id": "$response.body#/id"}
_LINE = {"product_id": "$response.body#/id"}


@router.get("")
@problems(InvalidCursor)
async def list_products(
    reads: ReplicaReadsDep,
    user: OptionalUser,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    q: Annotated[SingleLineText | None, Query(min_length=1, max_length=MAX_SEARCH_LENGTH)] = None,
    is_active: bool | None = None,
    min_price: Price = None,
    max_price: Price = None,
    currency: CurrencyCode | None = None,
    sort: ProductSort = ProductSort.CREATED,
) -> Page[ProductPublic]:
    """The catalog, searchable by name or SKU. Only staff see inactive products."""
    if user is None or not user.can(Permission.CATALOG_MANAGE):
        is_active = True
    filters = ProductFilter(
        q=q,
        is_active=is_active,
        min_price=min_price,
        max_price=max_price,
        currency=currency,
        sort=sort,
    )
    return await catalog_service.list_products(reads, filters=filters, limit=limit, cursor=cursor)


@router.get("/{product_id:uuid}")
@problems(ProductNotFound, NotFound)  # NotFound: a path id that is not a UUID
async def read_product(
    product_id: UUID, reads: ReplicaReadsDep, user: OptionalUser, response: Response
) -> ProductPublic:
    staff = user is not None and user.can(Permission.CATALOG_MANAGE)
    product = await catalog_service.get_product(
        reads, product_id=product_id, include_inactive=staff
    )
    response.headers["ETag"] = etag(product.version)
    return product


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=links(
        201,
        readProduct=_PRODUCT,
        updateProduct={**_PRODUCT, "header.If-Match": "$response.body#/version"},
        deleteProduct=_PRODUCT,
        placeOrder={
            "requestBody": {"lines": [{"product_id": "$response.body#/id", "quantity": 1}]}
        },
    ),
)
@problems(SkuTaken)
async def create_product(
    data: ProductCreate, _: CatalogManager, uow: UnitOfWorkDep, response: Response
) -> ProductPublic:
    product = await catalog_service.create_product(uow, data=data)
    response.headers["ETag"] = etag(product.version)
    return product


@router.patch("/{product_id:uuid}")
@problems(ProductNotFound, NotFound, PreconditionFailed, PreconditionRequired)
async def update_product(
    product_id: UUID,
    data: ProductUpdate,
    if_match: RequiredIfMatch,
    _: CatalogManager,
    uow: UnitOfWorkDep,
    response: Response,
) -> ProductPublic:
    """Needs `If-Match: "<version>"`: 428 without it, 412 when it is stale."""
    product = await catalog_service.update_product(
        uow, product_id=product_id, expected_version=if_match.version(), data=data
    )
    response.headers["ETag"] = etag(product.version)
    return product


@router.delete(
    "/{product_id:uuid}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
@problems(ProductNotFound, NotFound, PreconditionFailed)
async def delete_product(
    product_id: UUID,
    if_match: OptionalIfMatch,
    _: CatalogManager,
    uow: UnitOfWorkDep,
) -> None:
    """Soft delete. `If-Match` is optional here; when sent, it must be current."""
    await catalog_service.delete_product(
        uow, product_id=product_id, expected_version=if_match.version_if_sent()
    )


@router.post(
    "/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
@problems(ImportRejected, ImportEmpty, UnsupportedMediaType)
async def import_products(request: Request, _: CatalogManager, uow: UnitOfWorkDep) -> ImportResult:
    """Bulk upsert by SKU from CSV (`text/csv`) or JSON lines (`application/x-ndjson`).
    Every row is validated first; any bad row rejects the whole file (422, listing
    each bad line) and nothing is written; a file without rows is a 422 too."""
    fmt = ImportFormat.from_content_type(request.headers.get("content-type"))
    if fmt is None:
        raise UnsupportedMediaType("Send text/csv or application/x-ndjson.")
    # Read here, before the service holds the collector off: a slow upload must not.
    return await catalog_service.import_file(uow, content=await request.body(), fmt=fmt)

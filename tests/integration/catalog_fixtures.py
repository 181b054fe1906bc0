"""Deprecated re-exports, removed once the last importer moves: data makers are in
`tests/factories.py`, the other helpers in `tests/helpers.py`."""

from __future__ import annotations

from tests.factories import (
    API,
    Headers,
    create_product,
    customer,
    expire_idempotency_keys,
    idempotency,
    lines,
    new_sku,
    orders_count,
    place_order,
    post_order,
    product_body,
    products_count,
    read_product,
    set_order_created_at,
    set_order_status,
    staff_headers,
    stock_of,
    stored_order,
    stored_product,
)
from tests.helpers import all_pages, live_app, problem

__all__ = [
    "API",
    "Headers",
    "all_pages",
    "create_product",
    "customer",
    "expire_idempotency_keys",
    "idempotency",
    "lines",
    "live_app",
    "new_sku",
    "orders_count",
    "place_order",
    "post_order",
    "problem",
    "product_body",
    "products_count",
    "read_product",
    "set_order_created_at",
    "set_order_status",
    "staff_headers",
    "stock_of",
    "stored_order",
    "stored_product",
]

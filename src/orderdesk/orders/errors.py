from typing import Any
from uuid import UUID

from orderdesk.core.errors import Conflict, InvalidInput, NotFound


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "No such order"


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "The order cannot move to that state from its current one"


class InsufficientStock(Conflict):
    code = "insufficient_stock"
    title = "Not enough stock for some products; nothing was reserved"

    def __init__(self, shortages: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(shortages)} product(s) short")
        self.shortages = shortages

    def extra(self) -> dict[str, Any]:
        return {"shortages": self.shortages}


class UnknownProducts(InvalidInput):
    code = "unknown_products"
    title = "Some products do not exist or are not for sale"

    def __init__(self, product_ids: list[UUID]) -> None:
        super().__init__(", ".join(str(p) for p in product_ids), field=["lines"])


class MixedCurrencies(InvalidInput):
    code = "mixed_currencies"
    title = "All products in one order must share a currency"

    def __init__(self) -> None:
        super().__init__(self.title, field=["lines"])


class DuplicateProduct(InvalidInput):
    code = "duplicate_product"
    title = "Each product may appear on one line only"

    def __init__(self) -> None:
        super().__init__(self.title, field=["lines"])


class OrderTotalTooLarge(InvalidInput):
    code = "order_total_too_large"
    title = "A line total or the order total exceeds the largest amount allowed"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Line and order totals may be at most {limit} minor units.", field=["lines"]
        )

from typing import Any

from orderdesk.core.errors import Conflict, InvalidInput, NotFound


class ProductNotFound(NotFound):
    code = "product_not_found"
    title = "No such product"


class SkuTaken(Conflict):
    code = "sku_taken"
    title = "A product with this SKU already exists"


class ImportRejected(InvalidInput):
    code = "import_rejected"
    title = "The file has invalid rows; nothing was imported"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} problem(s) found; nothing was imported")
        self.errors = errors

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


class ImportEmpty(InvalidInput):
    code = "import_empty"
    title = "The file has no rows to import"

    def __init__(self) -> None:
        super().__init__("Send at least one product row (a CSV header alone is not one).")

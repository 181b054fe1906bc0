"""A client generated from the served document works, errors included.

openapi-python-client builds a typed package from `/openapi.json`; these tests use
it against the real server: register, sign in, place an order, import products,
and get a 422 and a 404 back as typed `Problem` values instead of exceptions.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.contract.conftest import ContractServer

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "orderdesk_client"
# The import endpoint takes CSV or JSON lines; the generator types only binary
# bodies, so CSV is sent as bytes with its own content type.
CONFIG = f"""\
post_hooks: []
package_name_override: {PACKAGE}
content_type_overrides:
  text/csv: application/octet-stream
"""


@pytest.fixture(scope="module")
def generated(
    contract_server: ContractServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ModuleType]]:
    workdir = tmp_path_factory.mktemp("client")
    document = workdir / "openapi.json"
    document.write_bytes(httpx.get(f"{contract_server.base_url}/openapi.json").content)
    (workdir / "config.yml").write_text(CONFIG)
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(document),
            "--config",
            str(workdir / "config.yml"),
            "--meta",
            "none",
            "--output-path",
            str(workdir / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "will not be generated" not in result.stdout, result.stdout
    sys.path.insert(0, str(workdir))
    try:
        names = [
            "client",
            "models",
            "types",
            "api.auth.register_account",
            "api.auth.issue_token",
            "api.catalog.list_products",
            "api.catalog.import_products",
            "api.orders.place_order",
            "api.orders.read_order",
        ]
        yield {name: importlib.import_module(f"{PACKAGE}.{name}") for name in names}
    finally:
        sys.path.remove(str(workdir))
        for name in [module for module in sys.modules if module.startswith(PACKAGE)]:
            del sys.modules[name]


def _customer(g: dict[str, ModuleType], base_url: str) -> Any:
    models = g["models"]
    anonymous = g["client"].Client(base_url=base_url)
    email, password = f"client-{uuid.uuid4().hex[:10]}@example.com", "an unusual phrase of words 42"
    registered = g["api.auth.register_account"].sync_detailed(
        client=anonymous,
        body=models.UserCreate(email=email, password=password, full_name="Generated Client"),
    )
    assert registered.status_code == 201, registered.content
    assert isinstance(registered.parsed, models.UserPublic)
    issued = g["api.auth.issue_token"].sync_detailed(
        client=anonymous, body=models.PasswordGrantForm(username=email, password=password)
    )
    assert isinstance(issued.parsed, models.TokenPair), issued.content
    return g["client"].AuthenticatedClient(base_url=base_url, token=issued.parsed.access_token)


@pytest.mark.contract
def test_a_generated_client_registers_signs_in_and_places_an_order(
    generated: dict[str, ModuleType], contract_server: ContractServer
) -> None:
    models = generated["models"]
    client = _customer(generated, contract_server.base_url)
    page = generated["api.catalog.list_products"].sync(client=client)
    assert isinstance(page, models.ProductPage)
    assert page.items
    product = page.items[0]

    placed = generated["api.orders.place_order"].sync_detailed(
        client=client,
        body=models.OrderCreate(lines=[models.OrderLineCreate(product_id=product.id, quantity=1)]),
        idempotency_key=f"client-{uuid.uuid4().hex}",
    )

    assert placed.status_code == 201, placed.content
    assert isinstance(placed.parsed, models.OrderPublic)
    assert placed.parsed.lines[0].product_id == product.id
    assert placed.parsed.total.amount == product.price.amount


@pytest.mark.contract
def test_a_generated_client_gets_422_and_404_as_typed_problems(
    generated: dict[str, ModuleType], contract_server: ContractServer
) -> None:
    models = generated["models"]
    client = _customer(generated, contract_server.base_url)

    refused = generated["api.orders.place_order"].sync_detailed(
        client=client,
        body=models.OrderCreate(
            lines=[models.OrderLineCreate(product_id=uuid.uuid4(), quantity=0)]
        ),
        idempotency_key=f"client-{uuid.uuid4().hex}",
    )
    missing = generated["api.orders.read_order"].sync_detailed(client=client, order_id=uuid.uuid4())

    assert refused.status_code == 422
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.code == "validation_failed"
    assert [error.field for error in refused.parsed.errors] == ["lines.0.quantity"]
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.code == "order_not_found"


@pytest.mark.contract
def test_a_generated_client_imports_products_as_csv(
    generated: dict[str, ModuleType], contract_server: ContractServer
) -> None:
    models, types = generated["models"], generated["types"]
    admin = generated["client"].AuthenticatedClient(
        base_url=contract_server.base_url, token=contract_server.tokens["admin"]
    )
    sku = f"GEN-{uuid.uuid4().hex[:8]}"
    csv = f"sku,name,price_amount,currency,stock\n{sku},Generated mug,1500,EUR,4\n"

    imported = generated["api.catalog.import_products"].sync_detailed(
        client=admin, body=types.File(payload=csv.encode(), mime_type="text/csv")
    )

    assert imported.status_code == 200, imported.content
    assert isinstance(imported.parsed, models.ImportResult)
    assert (imported.parsed.rows, imported.parsed.created) == (1, 1)

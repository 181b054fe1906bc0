"""The served OpenAPI document: every error a route can return, as problem details,
with readable operation ids and schema names."""

from __future__ import annotations

from typing import Any

import pytest

from orderdesk.app import create_app
from tests.helpers import make_settings

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(make_settings()).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_operation_ids_are_the_route_names_in_camel_case(document: dict[str, Any]) -> None:
    ids = {f"{m} {p}": op["operationId"] for m, p, op in operations(document)}

    assert ids["POST /api/v1/orders"] == "placeOrder"
    assert ids["GET /api/v1/products"] == "listProducts"
    assert ids["POST /api/v1/auth/register"] == "registerAccount"
    assert all(op_id.isidentifier() and "_" not in op_id for op_id in ids.values())
    assert len(set(ids.values())) == len(ids)


def test_schema_names_are_readable(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])

    assert {"ProductPage", "OrderPage", "UserPage", "Problem"} <= names
    assert not {name for name in names if "_" in name or "[" in name}
    assert not {"HTTPValidationError", "ValidationError"} & names


def test_every_error_answer_is_a_problem_document(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            assert list(content) == ["application/problem+json"], (method, path, status)
            schema = content["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


def test_routes_list_the_errors_their_dependencies_raise(document: dict[str, Any]) -> None:
    responses = {f"{m} {p}": set(op["responses"]) for m, p, op in operations(document)}

    # CurrentUser: 401; a staff permission: 403; a body: 413 and 422; a path id: 404
    assert {"401", "403", "404", "413", "422", "503"} <= responses[
        "PATCH /api/v1/products/{product_id}"
    ]
    assert {"412", "428"} <= responses["PATCH /api/v1/products/{product_id}"]
    assert {"400", "409", "422"} <= responses["POST /api/v1/orders"]
    assert "401" not in responses["POST /api/v1/auth/register"]
    # The body limit answers before routing, on any path.
    assert responses["GET /health/live"] == {"200", "413"}
    assert {"409", "413"} <= responses["DELETE /api/v1/users/me"]  # concurrent_update


def test_validation_problems_document_their_field_list(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]

    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert "errors" in problem["properties"]
    description = document["paths"]["/api/v1/orders"]["post"]["responses"]["422"]["description"]
    assert "`validation_failed`" in description
    assert "`idempotency_key_reused`" in description


@pytest.mark.parametrize(
    ("path", "method", "header"),
    [
        ("/api/v1/orders", "post", "Idempotency-Key"),
        ("/api/v1/products/{product_id}", "patch", "If-Match"),
    ],
)
def test_headers_the_server_requires_are_required_in_the_document(
    document: dict[str, Any], path: str, method: str, header: str
) -> None:
    parameters = document["paths"][path][method]["parameters"]
    declared = next(p for p in parameters if p["name"] == header)

    assert declared["required"] is True
    assert declared["schema"]["type"] == "string"


def test_if_match_stays_optional_on_delete(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/api/v1/products/{product_id}"]["delete"]["parameters"]

    assert next(p for p in parameters if p["name"] == "If-Match")["required"] is False

"""The OpenAPI document, made to say exactly what the server answers.

FastAPI documents the success response of each route and a 422 in a shape the
server never sends. Here every operation also lists each error status it can
return, as problem details (`application/problem+json`), with the stable codes
behind each status. The errors are declared where they arise: a dependency or a
route function carries the `DomainError` classes it can raise (`@problems(...)`),
and the document collects them along each route's dependency tree, so a route that
takes `CurrentUser` documents its 401 without saying so itself.

Headers the server requires but checks only after the path and body are valid
(`If-Match`, `Idempotency-Key`) are optional parameters to FastAPI, so that a bad
body is reported before a missing precondition; the document marks them required.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from importlib import resources
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles

from orderdesk.core.errors import PROBLEM_JSON, DomainError

F = TypeVar("F", bound=Callable[..., Any])
_PROBLEMS_ATTR = "__orderdesk_problems__"
_REQUIRED_HEADERS_ATTR = "__orderdesk_required_headers__"
_PROBLEM_REF = "#/components/schemas/Problem"


class FieldProblem(BaseModel):
    field: str | None = Field(description="Dotted path of the bad input; null for a whole line.")
    message: str
    type: str | None = Field(default=None, description="Machine-readable kind of the error.")
    line: int | None = Field(default=None, description="The line of an imported file.")


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is stable and machine-readable."""

    type: str = Field(examples=["urn:orderdesk:problem:not_found"])
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] | None = Field(
        default=None, description="Each bad field (validation errors and rejected imports)."
    )


def problems(*errors: type[DomainError]) -> Callable[[F], F]:
    """Declare the domain errors a route or a dependency can raise."""

    def mark(function: F) -> F:
        declared = getattr(function, _PROBLEMS_ATTR, ())
        setattr(function, _PROBLEMS_ATTR, (*declared, *errors))
        return function

    return mark


def required_headers(*names: str) -> Callable[[F], F]:
    """Declare headers that are required although FastAPI reads them as optional."""

    def mark(function: F) -> F:
        setattr(function, _REQUIRED_HEADERS_ATTR, names)
        return function

    return mark


def operation_id(route: APIRoute) -> str:
    """`place_order` → `placeOrder`: the route function's name, in camel case."""
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def install_openapi(app: FastAPI, *, automatic: dict[str, tuple[type[DomainError], ...]]) -> None:
    """Replace `app.openapi` with the truthful document. `automatic` names the errors
    that every route (`"all"`), every route with parameters (`"params"`) or with a
    body (`"body"`) can return."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _build(app, automatic)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _build(app: FastAPI, automatic: dict[str, tuple[type[DomainError], ...]]) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    routes = {operation_id(route): route for route in api_routes(app.routes)}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            route = routes[operation["operationId"]]
            _document_errors(operation, _errors_of(route, automatic))
            _require_headers(operation, _marks(route, _REQUIRED_HEADERS_ATTR))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(_component_schemas())
    return _named_by_title(document)


def _named_by_title(document: dict[str, Any]) -> dict[str, Any]:
    """Pydantic keys a generic model's schema by its parameters (`Page_ProductPublic_`);
    name each component by its title instead (`ProductPage`), the name clients see."""
    schemas = document["components"]["schemas"]
    renames = {
        key: schema["title"]
        for key, schema in schemas.items()
        if schema.get("title", key) != key
        and schema["title"].isidentifier()
        and schema["title"] not in schemas
    }
    if not renames:
        return document
    prefix = "#/components/schemas/"

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.removeprefix(prefix) in renames:
                return {**node, "$ref": prefix + renames[ref.removeprefix(prefix)]}
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    renamed: dict[str, Any] = rewrite(document)
    renamed["components"]["schemas"] = {
        renames.get(key, key): value for key, value in renamed["components"]["schemas"].items()
    }
    return renamed


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, including those of included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from api_routes(included.routes)


def _errors_of(
    route: APIRoute, automatic: dict[str, tuple[type[DomainError], ...]]
) -> list[type[DomainError]]:
    errors = [*automatic.get("all", ()), *_marks(route, _PROBLEMS_ATTR)]
    if _takes_input(route.dependant):
        errors.extend(automatic.get("params", ()))
    if route.body_field is not None or _reads_raw_body(route):
        errors.extend(automatic.get("body", ()))
    return errors


def _marks(route: APIRoute, attribute: str) -> list[Any]:
    found: list[Any] = []
    for call in _calls(route.dependant):
        found.extend(getattr(call, attribute, ()))
    return found


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _takes_input(dependant: Dependant) -> bool:
    own = (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    )
    return bool(own) or any(_takes_input(sub) for sub in dependant.dependencies)


def _reads_raw_body(route: APIRoute) -> bool:
    extra = route.openapi_extra or {}
    return "requestBody" in extra


def _document_errors(operation: dict[str, Any], errors: list[type[DomainError]]) -> None:
    by_status: dict[int, set[str]] = {}
    for error in errors:
        by_status.setdefault(int(error.status), set()).add(error.code)
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's own validation shape, never sent
    for status, codes in sorted(by_status.items()):
        listed = ", ".join(f"`{code}`" for code in sorted(codes))
        response: dict[str, Any] = {
            "description": f"{HTTPStatus(status).phrase}. Codes: {listed}.",
            "content": {PROBLEM_JSON: {"schema": {"$ref": _PROBLEM_REF}}},
        }
        if status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        responses[str(status)] = response


def _require_headers(operation: dict[str, Any], names: list[str]) -> None:
    wanted = {name.lower() for name in names}
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter["name"].lower() in wanted:
            parameter["required"] = True
            schema = parameter.get("schema", {})
            # FastAPI spells an optional header as anyOf [string, null].
            if "anyOf" in schema:
                options = [s for s in schema.pop("anyOf") if s.get("type") != "null"]
                schema.update(options[0] if len(options) == 1 else {"anyOf": options})


def _component_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    components["Problem"] = schema
    return components


_ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Swagger UI at `/docs` and ReDoc at `/redoc`, their scripts and styles served
    from the installed `fastapi_offline` package rather than a CDN."""
    static = resources.files("fastapi_offline") / "static"
    app.mount(_ASSETS, StaticFiles(directory=str(static)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon.png",
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            redoc_js_url=f"{_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def links(status: int, **targets: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links from one answer to the operations that take what it returns, as
    `openapi_extra`: `links(201, readProduct={"product_id": "$response.body#/id"})`.
    A `requestBody` key is the linked operation's body. Clients and the contract
    suite's stateful tests follow them."""
    return {
        "responses": {
            str(status): {"links": {name: _link(name, target) for name, target in targets.items()}}
        }
    }


def _link(operation: str, target: dict[str, Any]) -> dict[str, Any]:
    parameters = {key: value for key, value in target.items() if key != "requestBody"}
    link: dict[str, Any] = {"operationId": operation}
    if parameters:
        link["parameters"] = parameters
    if "requestBody" in target:
        link["requestBody"] = target["requestBody"]
    return link

"""Layering rule: A route function calls exactly one service function: see `route_wiring_problems`
for the precise rule, and `ROUTES_WITHOUT_SERVICE` for the health probes.
"""

from __future__ import annotations

import ast
import textwrap

from tests.unit.structure.source import (
    PACKAGE,
    Finding,
    Source,
    bindings,
    dotted,
    package_sources,
    parse,
    report,
    resolve,
)

# --- 5. a route calls exactly one service function --------------------------------

ROUTE_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "api_route"})
# Methods of the `Request` parameter a route may await: reading the HTTP input is
# building the service call's arguments.
REQUEST_READS = frozenset({"body", "json", "form"})

# (file, route): routes that call no service. Only liveness: it answers for the
# process itself and must depend on nothing (readiness asks `health.service`).
ROUTES_WITHOUT_SERVICE: dict[tuple[str, str], str] = {
    ("health/api.py", "check_liveness"): "answers a constant; must depend on nothing",
}


def routers(src: Source) -> set[str]:
    """Module-level names bound to `APIRouter(...)`, and `router` always."""
    names = {"router"}
    for node in src.tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and (dotted(node.value.func) or "").rpartition(".")[2] == "APIRouter"
        ):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def route_functions(src: Source) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    names = routers(src)
    found = []
    for node in src.tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            func = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (
                isinstance(func, ast.Attribute)
                and func.attr in ROUTE_METHODS
                and isinstance(func.value, ast.Name)
                and func.value.id in names
            ):
                found.append(node)
                break
    return found


def service_function(target: str | None) -> bool:
    """`orderdesk.<...>.service.<name>` with a lower-case name: a CapWords name from
    a service module is a class (an error to raise), not a service function."""
    if target is None:
        return False
    *module, name = target.split(".")
    return module[:1] == [PACKAGE] and module[-1:] == ["service"] and not name[:1].isupper()


def repository_function(target: str | None) -> bool:
    if target is None:
        return False
    module = target.split(".")[:-1]
    return module[:1] == [PACKAGE] and module[-1:] == ["repository"]


def route_wiring_problems(src: Source) -> list[Finding]:
    """What breaks "a route calls exactly one service function", per route.

    A route is a function of an `api.py` decorated with `<router>.get/post/put/patch/
    delete/head/options/api_route(...)`, `<router>` a module-level `APIRouter(...)`.
    Its docstring aside, its body must:

    - call exactly one service function, directly in its body (an `if` around it is
      fine): a callee that resolves through the imports to `orderdesk.<...>.service.
      <lower_case_name>` (`order_service.place_order(...)` after `from orderdesk.orders
      import service as order_service`, or `place_order(...)` after `from
      orderdesk.orders.service import place_order`). A service call inside a lambda
      or a nested function is handed to something else to orchestrate, and is
      reported, not counted;
    - otherwise only build the service call's arguments and the HTTP answer, which is
      synchronous: plain calls such as `OrderFilter(...)`, `request.cookies.get(...)`,
      `UserPublic.from_user(user)`, `etag(...)`, `response.set_cookie(...)` are fine.
      The only awaits allowed are the service call and reading the request
      (`await request.body()`, `.json()`, `.form()` on a parameter annotated
      `Request`). Any other `await`, any `with` / `async with` (a connection, a
      transaction, a worker thread: the dependencies and the service own those),
      any `async for`, and any call of a repository function is reported.
    """
    names = bindings(src)
    return [
        Finding(src.relpath, line, what, route.name)
        for route in route_functions(src)
        for line, what in sorted(_route_problems(route, names))
    ]


def _route_problems(
    route: ast.FunctionDef | ast.AsyncFunctionDef, names: dict[str, str]
) -> list[tuple[int, str]]:
    request_params = {
        arg.arg
        for arg in [*route.args.posonlyargs, *route.args.args, *route.args.kwonlyargs]
        if arg.annotation is not None
        and (dotted(arg.annotation) or "").rpartition(".")[2] == "Request"
    }

    def reads_request(call: ast.expr) -> bool:
        return (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in REQUEST_READS
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id in request_params
        )

    problems: list[tuple[int, str]] = []
    direct: list[ast.Call] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, ast.Call):
            target = resolve(node.func, names)
            callee = ast.unparse(node.func)
            if service_function(target) and deferred:
                problems.append((node.lineno, f"defers service call {callee}(...)"))
            elif service_function(target):
                direct.append(node)
            elif repository_function(target):
                problems.append((node.lineno, f"calls repository {callee}(...)"))
        elif isinstance(node, ast.Await):
            call = node.value
            is_service = isinstance(call, ast.Call) and service_function(resolve(call.func, names))
            if not (is_service or reads_request(call)):
                shown = f"{ast.unparse(call.func)}(...)" if isinstance(call, ast.Call) else None
                problems.append((node.lineno, f"awaits {shown or ast.unparse(call)}"))
        elif isinstance(node, ast.With | ast.AsyncWith):
            keyword = "async with" if isinstance(node, ast.AsyncWith) else "with"
            problems.extend(
                (node.lineno, f"opens `{keyword} {ast.unparse(item.context_expr)}`")
                for item in node.items
            )
        elif isinstance(node, ast.AsyncFor):
            problems.append((node.lineno, f"iterates `async for ... in {ast.unparse(node.iter)}`"))
        nested = isinstance(node, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, deferred or nested)

    body = route.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # the docstring
    for statement in body:
        visit(statement, deferred=False)
    if len(direct) != 1:
        calls = ", ".join(f"{ast.unparse(c.func)}() at line {c.lineno}" for c in direct)
        problems.append(
            (
                route.lineno,
                f"calls {len(direct)} service functions, expected exactly 1"
                + (f": {calls}" if calls else ""),
            )
        )
    return problems


def test_each_route_calls_exactly_one_service_function() -> None:
    found: list[Finding] = []
    routes: set[tuple[str, str]] = set()
    for src in package_sources():
        if src.relpath.rpartition("/")[2] != "api.py":
            continue
        routes.update((src.relpath, route.name) for route in route_functions(src))
        found.extend(
            finding
            for finding in route_wiring_problems(src)
            if (finding.relpath, finding.scope) not in ROUTES_WITHOUT_SERVICE
        )
    assert routes, "found no route functions: has the router decorator changed?"
    stale = sorted(set(ROUTES_WITHOUT_SERVICE) - routes)
    message = report(
        "a route turns HTTP into one service call and its result into the answer; move the "
        "rest (connections, transactions, orchestration) into the service",
        found,
    )
    if stale:
        message += "\nROUTES_WITHOUT_SERVICE entries that match no route (remove them):\n" + (
            "\n".join(f"  {entry}" for entry in stale)
        )
    clean = not found and not stale
    assert clean, message


def test_route_wiring_checker_finds_them() -> None:
    bad = parse(
        textwrap.dedent(
            """
            from fastapi import APIRouter
            from orderdesk.orders import service as order_service
            from orderdesk.orders import repository
            from orderdesk.users.service import get_user
            from orderdesk.core import idempotency
            api = APIRouter()

            @api.get("/a")
            async def two(uow):
                await order_service.a(uow)
                return await get_user(uow)

            @api.get("/b")
            async def none(c):
                async with c.database.current_state() as connection:
                    return await repository.get(connection)

            @api.post("/c")
            async def deferred(uow):
                return await idempotency.run_once(uow, action=lambda: order_service.a(uow))
            """
        ),
        "orders/api.py",
    )
    assert [(f.scope, f.line, f.what.partition(" ")[0]) for f in route_wiring_problems(bad)] == [
        ("two", 10, "calls"),
        ("none", 15, "calls"),
        ("none", 16, "opens"),
        ("none", 17, "awaits"),
        ("none", 17, "calls"),
        ("deferred", 20, "calls"),
        ("deferred", 21, "awaits"),
        ("deferred", 21, "defers"),
    ]
    good = parse(
        textwrap.dedent(
            '''
            from fastapi import APIRouter, Request
            from orderdesk.orders import service as order_service
            from orderdesk.orders.schemas import OrderFilter, OrderPublic
            from orderdesk.orders.service import OrderNotFound
            router = APIRouter()

            def helper(): ...

            @router.get("/a")
            async def listing(uow, status=None):
                """Docstring."""
                filters = OrderFilter(status=status)
                return await order_service.list_orders(uow, filters=filters)

            @router.post("/b")
            async def upload(request: Request, uow, response):
                content = await request.body()
                if content:
                    order = await order_service.place(uow, content=content)
                else:
                    raise OrderNotFound()
                response.headers["ETag"] = str(order.version)
                return OrderPublic.from_order(order)

            async def not_a_route(uow):
                async with uow:
                    await helper()
            '''
        ),
        "orders/api.py",
    )
    assert [route.name for route in route_functions(good)] == ["listing", "upload"]
    assert route_wiring_problems(good) == []

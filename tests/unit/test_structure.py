"""The layering rules of `src/orderdesk`, checked statically on the source.

Every file is parsed with `ast`; nothing of the application is imported, so these
tests are pure, fast and fail with a list of `file:line: what` to fix. Each rule has
its checker (a function of one parsed file returning its findings) and a self-test
that runs the checker on a small violating source and a small clean one, so a
checker that silently stopped finding anything would fail too.

1. `orderdesk.core` imports nothing of `orderdesk` outside `orderdesk.core`: every
   `import` / `from ... import`, at module level, inside functions and under
   `if TYPE_CHECKING:` (a type-only import upward is still a dependency upward),
   relative imports resolved against the file's package.
2. A `repository.py` imports no `schemas` and no `service` module
   (`orderdesk.<pkg>.schemas`, `orderdesk.<pkg>.<sub>.service`, `from . import
   schemas`, ...): repositories take and return models and plain values.
3. Handlers and everything else are wired explicitly: no `importlib` and no
   `__import__(...)` anywhere under `src/orderdesk`, migrations included (Alembic
   loads `env.py` and the revisions itself; neither needs `importlib`). Only
   `importlib.resources` and `importlib.metadata`, imported by those names, are
   allowed: they read package data and load no code.
4. SQL is built in `repository.py` modules (and `migrations/`) only: see
   `sql_building_calls` for what counts, and `SQL_ALLOWED` for the few pieces of
   engine plumbing that are not queries.
5. A route function calls exactly one service function: see `route_wiring_problems`
   for the precise rule, and `ROUTES_WITHOUT_SERVICE` for the health probes.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "orderdesk"
SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE_DIR = SRC / PACKAGE


# --- parsing and name resolution -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    relpath: str  # inside src/orderdesk, POSIX: "core/outbox.py"
    module: str  # "orderdesk.core.outbox"
    tree: ast.Module

    @property
    def package(self) -> str:
        """The package relative imports are resolved against."""
        if self.relpath.endswith("__init__.py"):
            return self.module
        return self.module.rpartition(".")[0]


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    relpath: str
    line: int
    what: str
    scope: str = ""  # the enclosing function's qualified name, "" at module level

    def __str__(self) -> str:
        where = f" (in {self.scope})" if self.scope else ""
        return f"src/{PACKAGE}/{self.relpath}:{self.line}: {self.what}{where}"


def parse(source: str, relpath: str) -> Source:
    parts = relpath.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return Source(relpath, ".".join([PACKAGE, *parts]), ast.parse(source, filename=relpath))


@functools.cache
def package_sources() -> tuple[Source, ...]:
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert files, f"no Python files under {PACKAGE_DIR}"
    return tuple(
        parse(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE_DIR).as_posix())
        for path in files
    )


def walk_scoped(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Every node with the qualified name of the function or class around it."""

    def visit(node: ast.AST, scope: str) -> Iterator[tuple[ast.AST, str]]:
        for child in ast.iter_child_nodes(node):
            yield child, scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from visit(child, f"{scope}.{child.name}" if scope else child.name)
            else:
                yield from visit(child, scope)

    yield from visit(tree, "")


def import_base(src: Source, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names, relative ones resolved."""
    if not node.level:
        return node.module or ""
    anchor = src.package.split(".")
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def import_targets(src: Source, node: ast.Import | ast.ImportFrom) -> list[str]:
    """What an import statement reaches: `import a.b` -> a.b; `from a import b, c`
    -> a.b, a.c (a submodule or a name in a; either way a depends on it)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = import_base(src, node)
    return [base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names]


def bindings(src: Source) -> dict[str, str]:
    """Local name -> the dotted path it was imported as, for every import in the file
    (functions and TYPE_CHECKING blocks included)."""
    names: dict[str, str] = {}
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    head = alias.name.partition(".")[0]
                    names[head] = head
        elif isinstance(node, ast.ImportFrom):
            base = import_base(src, node)
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{base}.{alias.name}"
    return names


def dotted(expr: ast.expr) -> str | None:
    """`a.b.c` for a chain of attributes on a name, None for anything else."""
    attrs: list[str] = []
    while isinstance(expr, ast.Attribute):
        attrs.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    return ".".join([expr.id, *reversed(attrs)])


def resolve(expr: ast.expr, names: dict[str, str]) -> str | None:
    """The imported dotted path an expression names (`sa.update` -> sqlalchemy.update),
    None when its head is not an imported name (a local, a parameter, an attribute of
    a call result)."""
    path = dotted(expr)
    if path is None:
        return None
    head, _, rest = path.partition(".")
    if head not in names:
        return None
    return f"{names[head]}.{rest}" if rest else names[head]


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def report(title: str, findings: list[Finding]) -> str:
    return "\n".join([f"{title} ({len(findings)}):", *(f"  {f}" for f in sorted(findings))])


# --- 1. core imports nothing above it --------------------------------------------

CORE = f"{PACKAGE}.core"


def upward_imports(src: Source) -> list[Finding]:
    """Imports of `orderdesk` modules outside `orderdesk.core`, wherever they sit."""
    found = []
    for node, scope in walk_scoped(src.tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        upward = sorted(
            {
                target
                for target in import_targets(src, node)
                if is_under(target, PACKAGE) and not is_under(target, CORE)
            }
        )
        if upward:
            what = f"`{ast.unparse(node)}` reaches {', '.join(upward)}"
            found.append(Finding(src.relpath, node.lineno, what, scope))
    return found


def test_core_imports_nothing_above_it() -> None:
    found = [
        finding
        for src in package_sources()
        if is_under(src.module, CORE)
        for finding in upward_imports(src)
    ]
    assert not found, report(
        "orderdesk.core must not import the packages built on it (invert the dependency: "
        "let the upper package register with core, or move the code up)",
        found,
    )


def test_upward_import_checker_finds_them() -> None:
    bad = parse(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            import orderdesk.orders.models
            from orderdesk import users
            from .. import catalog
            from ..auth.models import User
            if TYPE_CHECKING:
                from orderdesk.webhooks.models import Hook
            def late():
                from orderdesk.notifications import mailer
            """
        ),
        "core/example.py",
    )
    assert [(f.line, f.scope) for f in upward_imports(bad)] == [
        (3, ""),
        (4, ""),
        (5, ""),
        (6, ""),
        (8, ""),
        (10, "late"),
    ]
    assert "orderdesk.auth.models.User" in upward_imports(bad)[3].what
    good = parse(
        "import sqlalchemy\nfrom orderdesk.core import ids\nfrom . import clock\n"
        "from .models import Entity\nfrom orderdesk import core\n",
        "core/example.py",
    )
    assert upward_imports(good) == []


# --- 2. repositories import no schemas and no services ---------------------------

REPOSITORY_FORBIDDEN = frozenset({"schemas", "service"})


def schema_or_service_imports(src: Source) -> list[Finding]:
    """Imports that reach an `orderdesk...schemas` or `orderdesk...service` module."""
    found = []
    for node, scope in walk_scoped(src.tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        hits = sorted(
            {
                target
                for target in import_targets(src, node)
                if is_under(target, PACKAGE)
                and REPOSITORY_FORBIDDEN.intersection(target.split(".")[1:])
            }
        )
        if hits:
            what = f"`{ast.unparse(node)}` reaches {', '.join(hits)}"
            found.append(Finding(src.relpath, node.lineno, what, scope))
    return found


def test_repositories_import_no_schemas_or_services() -> None:
    found = [
        finding
        for src in package_sources()
        if src.relpath.rpartition("/")[2] == "repository.py"
        for finding in schema_or_service_imports(src)
    ]
    assert not found, report(
        "a repository takes and returns models and plain values: it must not import a "
        "schemas or service module (pass the filter's fields, or move the type to models)",
        found,
    )


def test_schema_or_service_import_checker_finds_them() -> None:
    bad = parse(
        textwrap.dedent(
            """
            from orderdesk.orders.schemas import OrderFilter
            from orderdesk.catalog import schemas, models
            import orderdesk.users.service as user_service
            from .service import place_order
            from . import schemas as s
            from orderdesk.jobs.admin.service import x
            def late():
                from orderdesk.core.schemas import Timestamp
            """
        ),
        "orders/repository.py",
    )
    assert [f.line for f in schema_or_service_imports(bad)] == [2, 3, 4, 5, 6, 7, 9]
    assert "orderdesk.orders.service.place_order" in schema_or_service_imports(bad)[3].what
    good = parse(
        "from orderdesk.orders.models import Order\nfrom . import models\n"
        "from sqlmodel import select\nimport orderdesk.core.ids\n",
        "orders/repository.py",
    )
    assert schema_or_service_imports(good) == []


# --- 3. no importlib: wiring is explicit -----------------------------------------

# They read package data (files, versions) and load no code.
IMPORTLIB_DATA_MODULES = frozenset({"importlib.resources", "importlib.metadata"})


def dynamic_imports(src: Source) -> list[Finding]:
    """Imports of `importlib` (other than its data modules) and `__import__` calls."""
    found = []
    for node, scope in walk_scoped(src.tree):
        hits: list[str] = []
        if isinstance(node, ast.Import):
            # `import importlib.resources` binds `importlib` itself, so it counts.
            hits = [
                alias.name
                for alias in node.names
                if is_under(alias.name, "importlib")
                and not (alias.asname and alias.name in IMPORTLIB_DATA_MODULES)
            ]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            hits = [
                target
                for target in import_targets(src, node)
                if is_under(target, "importlib")
                and not any(is_under(target, data) for data in IMPORTLIB_DATA_MODULES)
            ]
        elif isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == "__import__") or (
                isinstance(func, ast.Attribute) and func.attr == "__import__"
            ):
                found.append(Finding(src.relpath, node.lineno, "calls __import__()", scope))
        if hits:
            what = f"`{ast.unparse(node)}` ({', '.join(hits)})"
            found.append(Finding(src.relpath, node.lineno, what, scope))
    return found


def test_handlers_are_wired_explicitly_without_importlib() -> None:
    found = [finding for src in package_sources() for finding in dynamic_imports(src)]
    assert not found, report(
        "modules are wired by explicit imports, never by importlib or __import__ (import "
        "the handler modules where they are registered, so the import graph is the wiring)",
        found,
    )


def test_dynamic_import_checker_finds_them() -> None:
    bad = parse(
        textwrap.dedent(
            """
            import importlib
            from importlib import import_module
            import importlib.util
            import importlib.resources
            from importlib.machinery import SourceFileLoader
            def load(name):
                return __import__(name)
            import builtins
            builtins.__import__("x")
            """
        ),
        "core/example.py",
    )
    assert [f.line for f in dynamic_imports(bad)] == [2, 3, 4, 5, 6, 8, 10]
    good = parse(
        "from importlib import resources\nfrom importlib.metadata import version\n"
        "import importlib.resources as r\nfrom orderdesk.notifications import tasks\n",
        "core/example.py",
    )
    assert dynamic_imports(good) == []


# --- 4. SQL is built in repositories ---------------------------------------------

SQL_LIBRARIES = frozenset({"sqlalchemy", "sqlmodel"})
SQL_BUILDERS = frozenset({"select", "insert", "update", "delete", "text"})

# (file, function, what): engine plumbing in core/database.py, not queries. Nothing
# else belongs here: a statement that reads or writes the application's rows goes in
# a repository.py, however small.
SQL_ALLOWED: dict[tuple[str, str, str], str] = {
    (
        "core/database.py",
        "_sqlite_engine._configure",
        ".execute(<string literal>)",
    ): "the SQLite PRAGMAs (WAL, busy timeout, foreign keys) set on every new connection",
    (
        "core/database.py",
        "_sqlite_engine._begin",
        ".exec_driver_sql(...)",
    ): "BEGIN / BEGIN IMMEDIATE: SQLite transaction control, issued by the engine event",
    (
        "core/database.py",
        "Database.ping",
        "sqlalchemy.text(...)",
    ): "`SELECT 1`, the readiness probe's connectivity check; it touches no table",
}


def is_string_literal(expr: ast.expr) -> bool:
    """A literal, an f-string, or text built from one with `+` or `%`."""
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, str)
    if isinstance(expr, ast.JoinedStr):
        return True
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add | ast.Mod):
        return is_string_literal(expr.left) or is_string_literal(expr.right)
    return False


def sql_building_calls(src: Source) -> list[Finding]:
    """Calls that build or send SQL:

    - `select( insert( update( delete( text(` when the callee resolves through the
      file's imports to `sqlalchemy...` or `sqlmodel...` (`from sqlmodel import
      select`, `sa.update`, `sqlalchemy.text`, `postgresql.insert`, `sqlite.insert`);
      a method of the same name on anything else (`dict.update`, `list.insert`,
      `redis.delete`) is not SQL;
    - the same builders named without a call, handed on as a value
      (`make_statement(postgresql.insert)`): whoever receives them builds SQL;
    - any `.exec_driver_sql(...)`: its argument is SQL text by definition;
    - `.execute(...)` whose statement is a string literal (or an f-string).
    """
    names = bindings(src)

    def builder(expr: ast.expr) -> str | None:
        target = resolve(expr, names)
        if (
            target is not None
            and target.partition(".")[0] in SQL_LIBRARIES
            and target.rpartition(".")[2] in SQL_BUILDERS
        ):
            return target
        return None

    # A builder handed on as a value (`_claim_statement(postgresql.insert)`) is called
    # somewhere else: reported where it is named.
    called_or_chained = {
        id(node.func) for node in ast.walk(src.tree) if isinstance(node, ast.Call)
    } | {id(node.value) for node in ast.walk(src.tree) if isinstance(node, ast.Attribute)}
    found = []
    for node, scope in walk_scoped(src.tree):
        if (
            isinstance(node, ast.Name | ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and id(node) not in called_or_chained
            and (target := builder(node)) is not None
        ):
            found.append(Finding(src.relpath, node.lineno, f"{target} passed on", scope))
        if not isinstance(node, ast.Call):
            continue
        what = None
        if (target := builder(node.func)) is not None:
            what = f"{target}(...)"
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "exec_driver_sql":
            what = ".exec_driver_sql(...)"
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "execute":
            statement = node.args[:1] + [k.value for k in node.keywords if k.arg == "statement"]
            if any(is_string_literal(arg) for arg in statement):
                what = ".execute(<string literal>)"
        if what is not None:
            found.append(Finding(src.relpath, node.lineno, what, scope))
    return found


def may_build_sql(src: Source) -> bool:
    return src.relpath.rpartition("/")[2] == "repository.py" or src.relpath.startswith(
        "migrations/"
    )


def test_sql_is_built_only_in_repositories() -> None:
    found: list[Finding] = []
    used: set[tuple[str, str, str]] = set()
    for src in package_sources():
        if may_build_sql(src):
            continue
        for finding in sql_building_calls(src):
            key = (finding.relpath, finding.scope, finding.what)
            if key in SQL_ALLOWED:
                used.add(key)
            else:
                found.append(finding)
    stale = sorted(set(SQL_ALLOWED) - used)
    message = report(
        "queries live in repository.py modules; move these statements into the package's "
        "repository and call it",
        found,
    )
    if stale:
        message += "\nSQL_ALLOWED entries that match nothing any more (remove them):\n" + (
            "\n".join(f"  {entry}" for entry in stale)
        )
    clean = not found and not stale
    assert clean, message


def test_sql_checker_finds_them() -> None:
    bad = parse(
        textwrap.dedent(
            """
            import sqlalchemy as sa
            import sqlalchemy
            from sqlalchemy.dialects import postgresql, sqlite
            from sqlmodel import select
            async def f(session, connection, table):
                await session.exec(select(table))
                await session.exec(sa.update(table).values(x=1))
                await session.execute(sqlalchemy.text("SELECT 1"))
                postgresql.insert(table)
                sqlite.insert(table)
                sa.delete(table)
                await connection.exec_driver_sql(query)
                await connection.execute("DELETE FROM t")
                cursor.execute(f"PRAGMA {pragma}")
                build(postgresql.insert)
            """
        ),
        "jobs/periodic.py",
    )
    assert [(f.line, f.what) for f in sql_building_calls(bad)] == [
        (7, "sqlmodel.select(...)"),
        (8, "sqlalchemy.update(...)"),
        (9, "sqlalchemy.text(...)"),
        (10, "sqlalchemy.dialects.postgresql.insert(...)"),
        (11, "sqlalchemy.dialects.sqlite.insert(...)"),
        (12, "sqlalchemy.delete(...)"),
        (13, ".exec_driver_sql(...)"),
        (14, ".execute(<string literal>)"),
        (15, ".execute(<string literal>)"),
        (16, "sqlalchemy.dialects.postgresql.insert passed on"),
    ]
    assert {f.scope for f in sql_building_calls(bad)} == {"f"}
    good = parse(
        textwrap.dedent(
            """
            import sqlalchemy as sa
            async def f(settings, rows, redis, pipe, statement, session):
                settings.update(x=1)
                rows.insert(0, 1)
                await redis.delete("key")
                await pipe.execute()
                await session.execute(statement)
                sa.func.count()
                def select(x): ...
                select(1)
            """
        ),
        "jobs/periodic.py",
    )
    assert sql_building_calls(good) == []


# --- 5. a route calls exactly one service function --------------------------------

ROUTE_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "api_route"})
# Methods of the `Request` parameter a route may await: reading the HTTP input is
# building the service call's arguments.
REQUEST_READS = frozenset({"body", "json", "form"})

# (file, route): routes that call no service. Only the health probes: they answer for
# the process and its infrastructure, not for the domain. Liveness must depend on
# nothing; readiness pings the database outside the pool and connects to the broker in
# its own thread, each with a timeout. There is no domain rule for a service to hold,
# and no unit of work; a "health service" would be a pass-through.
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

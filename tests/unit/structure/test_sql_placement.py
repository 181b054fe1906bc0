"""Layering rule: SQL is built in `repository.py` modules (and `migrations/`) only: see
`sql_building_calls` for what counts, and `SQL_ALLOWED` for the few pieces of
engine plumbing that are not queries.
"""

from __future__ import annotations

import ast
import textwrap

from tests.unit.structure.source import (
    Finding,
    Source,
    bindings,
    package_sources,
    parse,
    report,
    resolve,
    walk_scoped,
)

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

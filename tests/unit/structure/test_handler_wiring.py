"""Layering rule: Handlers and everything else are wired explicitly: no `importlib` and no
`__import__(...)` anywhere under `src/orderdesk`, migrations included (Alembic
loads `env.py` and the revisions itself; neither needs `importlib`). Only
`importlib.resources` and `importlib.metadata`, imported by those names, are
allowed: they read package data and load no code.
"""

from __future__ import annotations

import ast
import textwrap

from tests.unit.structure.source import (
    Finding,
    Source,
    import_targets,
    is_under,
    package_sources,
    parse,
    report,
    walk_scoped,
)

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

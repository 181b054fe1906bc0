"""Layering rule: `orderdesk.core` imports nothing of `orderdesk` outside `orderdesk.core`: every
`import` / `from ... import`, at module level, inside functions and under
`if TYPE_CHECKING:` (a type-only import upward is still a dependency upward),
relative imports resolved against the file's package.
"""

from __future__ import annotations

import ast
import textwrap

from tests.unit.structure.source import (
    PACKAGE,
    Finding,
    Source,
    import_targets,
    is_under,
    package_sources,
    parse,
    report,
    walk_scoped,
)

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

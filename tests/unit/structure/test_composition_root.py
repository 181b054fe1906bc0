"""Layering rule: `orderdesk.bootstrap`, the composition root that wires every
domain together, is imported only by the entry points: the app factory, the
migrations' environment, and the CLI — and the CLI only inside the commands that
need it, so `orderdesk --help` does not load every domain. A mechanism (the outbox,
its Celery worker and relay) is handed what it needs by its caller instead.
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

ROOT = f"{PACKAGE}.bootstrap"
# Entry points, and whether they may import the root at module level.
ENTRY_POINTS = {"app.py": True, "migrations/env.py": True, "cli.py": False}


def root_imports(src: Source) -> list[Finding]:
    allowed_at_top = ENTRY_POINTS.get(src.relpath)
    found = []
    for node, scope in walk_scoped(src.tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if not any(is_under(target, ROOT) for target in import_targets(src, node)):
            continue
        if allowed_at_top or (allowed_at_top is False and scope):
            continue
        what = f"`{ast.unparse(node)}` imports the composition root"
        found.append(Finding(src.relpath, node.lineno, what, scope))
    return found


def test_only_the_entry_points_import_the_composition_root() -> None:
    found = [finding for src in package_sources() for finding in root_imports(src)]
    assert not found, report(
        "only app.py, migrations/env.py and (inside its commands) cli.py may import "
        "orderdesk.bootstrap; pass what a module needs from there instead",
        found,
    )


def test_composition_root_checker_finds_them() -> None:
    worker = parse("from orderdesk.bootstrap import build_container\n", "outbox/worker.py")
    late = parse("def f():\n    from orderdesk import bootstrap\n", "outbox/relay_thread.py")
    cli_top = parse("from orderdesk.bootstrap import build_container\n", "cli.py")
    assert [(f.relpath, f.line) for f in root_imports(worker)] == [("outbox/worker.py", 1)]
    assert [(f.line, f.scope) for f in root_imports(late)] == [(2, "f")]
    assert [f.line for f in root_imports(cli_top)] == [1]

    cli_inside = parse(
        textwrap.dedent(
            """
            def worker():
                from orderdesk.bootstrap import PERIODIC_JOBS
            """
        ),
        "cli.py",
    )
    app = parse("from orderdesk.bootstrap import HANDLERS\n", "app.py")
    assert root_imports(cli_inside) == []
    assert root_imports(app) == []

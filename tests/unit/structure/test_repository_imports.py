"""Layering rule: A `repository.py` imports no `schemas` and no `service` module
(`orderdesk.<pkg>.schemas`, `orderdesk.<pkg>.<sub>.service`, `from . import
schemas`, ...): repositories take and return models and plain values.
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

"""Reading `src/orderdesk` for the layering rules: every file parsed with `ast`,
nothing of the application imported, so the checks are pure, fast and fail with a
list of `file:line: what` to fix. Each rule (one test module beside this one) has
its checker (a function of one parsed file returning its findings) and a self-test
that runs the checker on a small violating source and a small clean one, so a
checker that silently stopped finding anything would fail too."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "orderdesk"
SRC = Path(__file__).resolve().parents[3] / "src"
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

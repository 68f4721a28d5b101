"""Every import of the project's own modules names something that exists.

Imports inside functions only fail when the function runs, so a module moved to another package
can leave a stale ``from ogad_core.old.place import name`` that no import-time test sees. This
test reads every import statement (module level and inside functions) with ``ast`` and checks,
without importing anything, that the module exists and that an imported name is defined in it
(a top-level definition, assignment or import, or a submodule). ``dashboard/review_aids.py`` names
modules as strings (``_module("scoring.target")``); those are checked too.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWN = ("ogad_core", "dashboard", "tests", "benchmarks")


def _source_files() -> list[Path]:
    return sorted(p for top in OWN for p in (ROOT / top).rglob("*.py"))


def _module_path(module: str) -> Path | None:
    """The file of an own module (``a/b.py`` or ``a/b/__init__.py``), or None."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _top_level_names(path: Path) -> frozenset[str] | None:
    """Names a module defines at top level; None when it has a module ``__getattr__`` (lazy)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        names |= _defined(node)
    return None if "__getattr__" in names else frozenset(names)


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if isinstance(node, ast.If | ast.Try):
        inner = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
        for handler in getattr(node, "handlers", []):
            inner.extend(handler.body)
        return {name for child in inner for name in _defined(child)}
    return set()


def _problems(path: Path) -> list[str]:
    """``file:line: problem`` for each import of ``path`` that names nothing."""
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        for module, names in _imports(node):
            out.extend(f"{where}:{node.lineno}: {p}" for p in _check(module, names))
    return out


def _imports(node: ast.AST) -> list[tuple[str, list[str]]]:
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [(node.module, [a.name for a in node.names])]
    if _is_module_call(node):
        return [(f"ogad_core.{node.args[0].value}", [])]  # type: ignore[attr-defined]
    return []


def _is_module_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_module"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _check(module: str, names: list[str]) -> list[str]:
    if module.split(".")[0] not in OWN:
        return []
    path = _module_path(module)
    if path is None:
        return [f"no module {module}"]
    defined = _top_level_names(path)
    missing = [
        n
        for n in names
        if n != "*"
        and defined is not None
        and n not in defined
        and not _module_path(f"{module}.{n}")
    ]
    return [f"{module} has no {n}" for n in missing]


def test_own_imports_resolve() -> None:
    problems = [p for path in _source_files() for p in _problems(path)]
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_stale_import_inside_a_function(tmp_path: Path) -> None:
    stale = tmp_path / "stale.py"
    stale.write_text(
        "def f():\n"
        "    from ogad_core.review.no_such_module import x\n"
        "    from ogad_core.options import no_such_name\n"
        "    return _module('no_such_package.mod')\n"
    )
    found = "\n".join(_problems(stale))
    assert "no module ogad_core.review.no_such_module" in found
    assert "ogad_core.options has no no_such_name" in found
    assert "no module ogad_core.no_such_package.mod" in found


@pytest.mark.parametrize("module", ["ogad_core.options", "ogad_core.review.store"])
def test_the_check_accepts_what_exists(module: str) -> None:
    assert _check(module, []) == []

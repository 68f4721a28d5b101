"""The layers, enforced: every import of every module (at module level AND inside functions;
``if TYPE_CHECKING:`` blocks aside, they never run) is read from the source with ``ast`` and
checked against the contracts below. docs/architecture.md draws the same table.

* A package may import packages in the layers BELOW its own, never above, and never a sibling
  in its own layer (siblings are independent). Every module of ``ogad_core`` and ``dashboard``
  must belong to a layer, so a new package has to be placed here.
* Heavy libraries are imported only where they belong (torch in the engine and the steps that
  call it; Streamlit in the dashboard).

``test_layout.py`` checks the other half: the torch-free packages import without torch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: top to bottom; a package may import the layers below its own
LAYERS: list[list[str]] = [
    ["ogad_core.cli", "ogad_core.testing"],  # the composition root; the test-run writer
    ["dashboard"],
    ["ogad_core.reporting"],  # charts and the HTML report: the dashboard and `ogad report`
    ["ogad_core.evaluation"],
    ["ogad_core.pipeline"],
    ["ogad_core.review"],
    ["ogad_core.issues"],  # issue types over the scores, features and input properties
    ["ogad_core.engine", "ogad_core.scoring"],
    ["ogad_core.space"],
    ["ogad_core.data"],  # skips run directories inside the data (run.rundir.looks_like_run_dir)
    ["ogad_core.run"],
    ["ogad_core.options"],
    ["ogad_core._internal"],
    ["ogad_core.errors"],
]
#: ``ogad_core/__init__.py`` is the public facade (lazy attributes over the layers); any layer
#: may read its dunders (``__version__``, ``__file__``), none its facade names
FACADE = "ogad_core"
#: library -> the packages that may import it (anywhere else it is a contract failure)
LIBRARIES: dict[str, tuple[str, ...]] = {
    "torch": ("ogad_core.engine", "ogad_core.pipeline", "ogad_core.evaluation"),
    "torchvision": ("ogad_core.engine",),
    "peft": ("ogad_core.engine",),
    "sentence_transformers": ("ogad_core.engine",),
    "transformers": ("ogad_core.engine",),
    "ray": ("ogad_core.engine",),
    "streamlit": ("dashboard",),
    "plotly": ("ogad_core.reporting", "dashboard"),
    "umap": ("ogad_core.scoring",),
    "faiss": ("ogad_core.space",),
    "numba": ("ogad_core.issues",),  # the registration's warp loop (UMAP compiles its own)
}


@dataclass(frozen=True)
class Import:
    """One import statement: who imports what, where (``module:line``)."""

    module: str
    target: str
    names: tuple[str, ...]
    line: int

    def where(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return inside


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports_of_source(source: str, *, is_package: bool, module: str) -> list[Import]:
    tree = ast.parse(source)
    skip = _type_checking_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [Import(module, a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            out.append(Import(module, _resolve(module, is_package, node), names, node.lineno))
    return out


def imports_of(path: Path) -> list[Import]:
    """Every import that runs in the module at ``path``: module level and inside functions."""
    source = path.read_text(encoding="utf-8")
    return _imports_of_source(
        source, is_package=path.name == "__init__.py", module=_module_name(path)
    )


def _files(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def layer_of(module: str) -> tuple[int, str] | None:
    """(layer index, package) of a module of ogad_core or dashboard; None when unplaced."""
    for index, layer in enumerate(LAYERS):
        for package in layer:
            if module == package or module.startswith(package + "."):
                return index, package
    return None


def _is_ours(target: str) -> bool:
    return target.split(".")[0] in ("ogad_core", "dashboard")


def layer_violations(imports: list[Import]) -> list[str]:
    """Imports that go up a layer, across to a sibling, or into the facade's names."""
    bad = []
    for imp in imports:
        if not _is_ours(imp.target) or imp.module == FACADE:
            continue
        if imp.target == FACADE:
            if not all(n.startswith("__") for n in imp.names) and imp.names:
                bad.append(imp.where() + f" ({', '.join(imp.names)}: import the layer instead)")
            continue
        mine, theirs = layer_of(imp.module), layer_of(imp.target)
        if mine is None or theirs is None or mine[1] == theirs[1]:
            continue  # unplaced modules are reported by their own test
        if theirs[0] <= mine[0]:
            kind = "a sibling" if theirs[0] == mine[0] else "upward"
            bad.append(f"{imp.where()} ({kind}: {mine[1]} -> {theirs[1]})")
    return bad


def library_violations(imports: list[Import]) -> list[str]:
    """Imports of a heavy library outside the packages allowed to use it."""
    bad = []
    for imp in imports:
        allowed = LIBRARIES.get(imp.target.split(".")[0])
        if allowed is None:
            continue
        if not any(imp.module == p or imp.module.startswith(p + ".") for p in allowed):
            bad.append(imp.where())
    return bad


def _all_imports(*packages: str) -> list[Import]:
    return [imp for path in _files(*packages) for imp in imports_of(path)]


def test_every_module_has_a_layer() -> None:
    unplaced = [
        _module_name(p)
        for p in _files("ogad_core", "dashboard")
        if _module_name(p) != FACADE and layer_of(_module_name(p)) is None
    ]
    assert unplaced == [], "place these in tests/test_layers.py LAYERS"


def test_no_package_imports_upward_or_across() -> None:
    assert layer_violations(_all_imports("ogad_core", "dashboard")) == []


def test_heavy_libraries_stay_in_their_packages() -> None:
    assert library_violations(_all_imports("ogad_core", "dashboard")) == []


# ---- the checks can fail ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("def f():\n    from torchvision.datasets import ImageFolder\n", "library"),
        ("def f():\n    from ogad_core.engine import models\n", "layer"),
        ("from ogad_core.review import store\n", "layer"),  # upward
        ("from ogad_core import compute_gradients\n", "layer"),  # the facade
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n", None),
        ("from ogad_core.options import ComputeConfig\nfrom ogad_core import __version__\n", None),
    ],
)
def test_the_contracts_catch_imports_inside_functions(source: str, found: str | None) -> None:
    imports = _imports_of_source(source, is_package=False, module="ogad_core.data.example")
    assert bool(layer_violations(imports)) == (found == "layer")
    assert bool(library_violations(imports)) == (found == "library")


def test_the_contracts_catch_a_sibling_import() -> None:
    source = "def f():\n    from ogad_core.scoring import detectors\n"
    imports = _imports_of_source(source, is_package=False, module="ogad_core.engine.example")
    assert layer_violations(imports)

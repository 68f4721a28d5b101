"""The layout's torch boundary: every module of the torch-free packages imports without torch.

Run in a fresh interpreter per package, so an import made by an earlier test cannot hide one.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import ogad_core

#: packages whose every module must import without loading torch
TORCH_FREE = [
    "ogad_core.run",
    "ogad_core.data",
    "ogad_core.scoring",
    "ogad_core.issues",
    "ogad_core.review",
    "ogad_core.pipeline",
]
#: single modules that must import without loading torch
TORCH_FREE_MODULES = [
    "ogad_core",
    "ogad_core._internal",
    "ogad_core.cli",
    "ogad_core.errors",
    "ogad_core.options",
    "ogad_core.evaluation",
    "dashboard.run_view",
    "dashboard.evaluation_view",
]


def _modules(package: str) -> list[str]:
    module = __import__(package, fromlist=["__path__"])
    found = [package]
    for info in pkgutil.walk_packages(module.__path__, prefix=package + "."):
        found.append(info.name)
    return found


def _imports_torch(modules: list[str]) -> list[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'torch' in sys.modules:\n"
        "        print(name); break\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("package", TORCH_FREE)
def test_torch_free_packages_never_import_torch(package: str) -> None:
    modules = _modules(package)
    assert len(modules) >= 2, f"{package} has no modules"
    assert _imports_torch(modules) == []


def test_torch_free_modules_never_import_torch() -> None:
    assert _imports_torch(TORCH_FREE_MODULES) == []


def test_the_engine_is_where_torch_lives() -> None:
    # the check above can fail: the engine's modules do load torch
    assert _imports_torch(["ogad_core.engine.gradients"]) == ["ogad_core.engine.gradients"]


def test_public_api_still_resolves() -> None:
    from ogad_core import compute_gradients

    assert callable(compute_gradients)
    assert ogad_core.__version__

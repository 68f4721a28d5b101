"""Start-up cost: ``ogad --help``, ``ogad export`` and the dashboard's modules load neither torch,
scikit-learn nor umap (each costs seconds; they are imported where a step needs them).

Each case runs in a fresh interpreter, so a module an earlier test imported cannot hide one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ogad_core.testing import make_run

#: the heavy libraries a light command must not import
HEAVY = ("torch", "torchvision", "sklearn", "umap", "numba", "faiss", "mlxtend", "cleanlab")


def _heavy_after(code: str) -> list[str]:
    """The HEAVY modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = (
        f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_no_heavy_library() -> None:
    code = (
        "from ogad_core.cli import main\n"
        "import contextlib, io\n"
        "for argv in (['--help'], ['compute', '--help'], ['export', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
    )
    assert _heavy_after(code) == []


def test_export_imports_no_heavy_library(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n=40)
    out = tmp_path / "out.csv"
    argv = ["export", str(run), "--out", str(out)]
    code = f"from ogad_core.cli import main\nassert main({argv!r}) == 0"
    assert _heavy_after(code) == []
    assert out.read_text().count("\n") == 41


def test_dashboard_modules_import_no_heavy_library() -> None:
    # every module but the Streamlit scripts (app.py and the page scripts), which render
    code = (
        "import importlib, pkgutil, dashboard\n"
        "for info in pkgutil.walk_packages(dashboard.__path__, prefix='dashboard.'):\n"
        "    if info.name != 'dashboard.app' and not info.name.startswith('dashboard.views'):\n"
        "        importlib.import_module(info.name)\n"
    )
    assert _heavy_after(code) == []


def test_the_probe_sees_a_heavy_import() -> None:
    # the checks above can fail: scoring a table does load scikit-learn
    assert "sklearn" in _heavy_after("import ogad_core.scoring.detectors")

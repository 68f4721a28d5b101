"""Reliability, class 4 (issue 22): the export is safe to open in a spreadsheet — text cells that
would run as formulas are escaped by default; ``--raw`` keeps them verbatim for programs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from tests.reliability_helpers import ogad

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "-1", "@SUM(A1:A9)"]


def _hostile_run(tmp_path: Path) -> Path:
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["data"]["label_names"] = HOSTILE
    manifest["label_names"] = HOSTILE
    (run / "manifest.json").write_text(json.dumps(manifest))
    samples = pd.read_parquet(run / "samples.parquet")
    samples.loc[0, "ref"] = "+cmd|' /C calc'!A0"
    samples.to_parquet(run / "samples.parquet", index=False)
    return run


def _cells(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_export_escapes_formula_cells_by_default_and_raw_keeps_them(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    safe, raw = tmp_path / "safe.csv", tmp_path / "raw.csv"
    assert ogad("export", str(run), "--out", str(safe)).returncode == 0
    assert ogad("export", str(run), "--out", str(raw), "--raw").returncode == 0
    rows, verbatim = _cells(safe), _cells(raw)
    labels = {r["original_label"] for r in rows}
    assert labels == {"'" + HOSTILE[0], "-1", "'" + HOSTILE[2]}  # a plain number stays
    assert rows[0]["ref"] == "'+cmd|' /C calc'!A0"
    assert {r["original_label"] for r in verbatim} == set(HOSTILE)
    assert verbatim[0]["ref"] == "+cmd|' /C calc'!A0"
    for row in rows:  # nothing a spreadsheet runs; numbers untouched
        assert not any(v.startswith(("=", "+", "@")) for v in row.values())
        float(row["score"])

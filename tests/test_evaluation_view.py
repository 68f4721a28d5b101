"""The dashboard's reading of ``evaluation.json`` (dashboard.evaluation_view): figures equal to
the report, the live fallback, stale and corrupt reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import evaluation_view as view_module
from dashboard.evaluation_view import WARNING, evaluation_stamp, load_evaluation_view
from ogad_core.evaluation import report as evaluation
from ogad_core.evaluation.schema import EVALUATION_JSON
from ogad_core.scoring.metrics import evaluation_table
from ogad_core.testing import make_run, write_evaluation

REPO = Path(__file__).resolve().parent.parent


def _auroc(frame: pd.DataFrame) -> dict[str, float]:
    return dict(zip(frame["method"], frame["AUROC"], strict=True))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", kind="image", n=60)


@pytest.fixture(scope="module")
def evaluated(evaluated_digits, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """This module's copy of the real digits run evaluated with baselines and retraining."""
    run, _, report = evaluated_digits
    copy = tmp_path_factory.mktemp("view") / "run"
    shutil.copytree(run, copy)
    return copy, report.to_json()


def test_the_module_is_torch_free() -> None:
    code = (
        "import sys\nimport dashboard.evaluation_view\n"
        "assert 'torch' not in sys.modules and 'ogad_core.evaluation.report' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_real_report_is_shown_as_written(evaluated: tuple[Path, dict]) -> None:
    run, report = evaluated
    view = load_evaluation_view(run)
    assert view is not None
    assert view.source == "report" and not view.stale and view.reason is None
    assert view.created == report["created"]
    table = view.detection
    assert list(table.columns[:2]) == ["method", "kind"]
    assert {"AUROC", "AP", "P@1%", "P@5%", "P@10%", "R@n_flipped", "seconds", "total s"} <= set(
        table.columns
    )
    assert table["AUROC"].is_monotonic_decreasing
    rows = {r["detector"]: r for r in report["detection"]}
    assert set(table["method"]) == set(rows) >= {"iforest", "l2", "cleanlab", "tracin"}
    for rec in table.to_dict(orient="records"):
        row = rows[rec["method"]]
        assert rec["kind"] == row["kind"]
        assert rec["AUROC"] == row["auroc"] and rec["AP"] == row["average_precision"]
        assert rec["P@5%"] == row["precision_at_5pct"]
        assert rec["R@n_flipped"] == row["recall_at_n_flipped"]
        if row["seconds"] is None:
            assert np.isnan(rec["seconds"])
        else:
            assert rec["seconds"] == row["seconds"]
    assert view.column_formats["AUROC"] == "%.4f"

    c = report["compute"]
    assert view.verdict is not None
    assert view.verdict.ok == c["within_0_01_of_cleanlab_or_better"]
    assert f"`{c['best_gradient_detector']}`" in view.verdict.text
    assert f"{c['best_gradient_auroc']:.4f}" in view.verdict.text
    assert f"{c['cleanlab_auroc']:.4f}" in view.verdict.text
    assert f"{c['auroc_gap_vs_cleanlab']:+.4f}" in view.verdict.text

    rt = report["retrain"]
    assert view.references is not None and view.trims is not None
    assert list(view.references.columns) == ["reference", "removed", "test accuracy"]
    ref = rt["references"][0]
    assert view.references.iloc[0]["reference"] == ref["label"]
    assert view.references.iloc[0]["test accuracy"] == f"{ref['mean']:.4f}"  # one seed: no std
    assert list(view.trims["method"]) == ["random", "l2", "cleanlab"]
    (header,) = [c for c in view.trims.columns if c != "method"]
    assert header == "trim 10% (30 removed)"
    by = {r["method"]: r for r in rt["rows"]}
    for name, cell in zip(view.trims["method"], view.trims[header], strict=True):
        assert cell == f"{by[name]['mean']:.4f} [{by[name]['flipped_trimmed']:g} flipped]"
    assert "final" in view.retrain_caption and "seed(s) (0)" in view.retrain_caption
    assert any("find\\_label\\_issues" in n or "find_label_issues" in n for n in view.notes)


def test_changed_scores_make_the_report_stale(evaluated: tuple[Path, dict], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(evaluated[0], run)
    scores = pd.read_parquet(run / "scores.parquet")
    scores["l2_score"] = scores["l2_score"][::-1].to_numpy()
    scores.to_parquet(run / "scores.parquet", index=False)
    view = load_evaluation_view(run)
    assert view is not None and view.stale and view.level == WARNING
    assert view.source == "report"  # the report's figures, with the warning
    assert "`l2`" in view.reason and "changed" in view.reason
    assert "ogad evaluate" in view.reason and "--retrain" in view.reason

    scores["extra_score"], scores["extra_rank"] = np.arange(len(scores)), 1
    scores.to_parquet(run / "scores.parquet", index=False)
    view = load_evaluation_view(run)
    assert view is not None and view.stale
    assert "detectors the report lacks: `extra`" in view.reason


def test_a_report_without_retraining_baselines_or_timings(run: Path) -> None:
    report = write_evaluation(run)
    assert report["retrain"] is None and report["baselines"] is None
    view = load_evaluation_view(run)
    assert view is not None and view.source == "report" and not view.stale
    assert "seconds" not in view.detection.columns and "total s" not in view.detection.columns
    assert _auroc(view.detection) == {r["detector"]: r["auroc"] for r in report["detection"]}
    assert view.verdict is None and view.references is None and view.trims is None
    assert any("--baselines" in n for n in view.notes)


def test_made_up_retraining_and_cleanlab(run: Path) -> None:
    report = write_evaluation(run, retrain=True, cleanlab=True)
    view = load_evaluation_view(run)
    assert view is not None and not view.stale
    assert view.verdict is not None and "cleanlab" in view.verdict.text
    assert "x its compute" not in view.verdict.text  # no timings: no compute ratio
    assert list(view.trims.columns) == ["method", "trim 5% (3 removed)", "trim 10% (6 removed)"]
    assert view.trims.iloc[0, 0] == "random"
    none = report["retrain"]["references"][0]
    assert view.references.iloc[0]["test accuracy"] == f"{none['mean']:.4f} ± {none['std']:.4f}"


def test_missing_report_falls_back_to_live_figures(run: Path) -> None:
    view = load_evaluation_view(run)
    assert view is not None and view.source == "live" and view.stale
    assert "No evaluation.json yet" in view.reason
    assert "ogad evaluate" in view.reason and "--baselines --retrain" in view.reason
    expected = evaluation_table(
        pd.read_parquet(run / "scores.parquet"), pd.read_parquet(run / "samples.parquet")
    )
    assert _auroc(view.detection) == pytest.approx(
        dict(zip(expected["detector"], expected["auroc"], strict=True))
    )
    assert view.detection["AUROC"].is_monotonic_decreasing
    assert view.references is None and view.created is None


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json",
        b'{"detection": [',
        b"[]",
        b"{}",
        b'{"detection": "x"}',
        b'{"detection": [{"auroc": 0.5}]}',
        b'{"detection": [{"detector": "l2", "auroc": "high"}]}',
        b'{"detection": [{"detector": "l2"}]}',
    ],
)
def test_corrupt_report_is_a_note(run: Path, content: bytes) -> None:
    (run / EVALUATION_JSON).write_bytes(content)
    view = load_evaluation_view(run)
    assert view is not None and view.source == "live" and view.stale
    assert view.level == WARNING and "evaluation.json is unusable" in view.reason
    assert set(view.detection["method"]) == {"iforest", "l2"}


def test_malformed_sections_keep_the_detection_table(run: Path) -> None:
    report = write_evaluation(run, retrain=True)
    report["retrain"]["rows"] = 3
    report["compute"]["cleanlab_over_best_gradient_compute"] = "fast"
    (run / EVALUATION_JSON).write_text(json.dumps(report), encoding="utf-8")
    view = load_evaluation_view(run)
    assert view is not None and view.source == "report"
    assert view.references is None and any("retraining results" in n for n in view.notes)
    assert _auroc(view.detection) == {r["detector"]: r["auroc"] for r in report["detection"]}


def test_other_samples_make_the_report_stale(run: Path) -> None:
    write_evaluation(run)
    samples = pd.read_parquet(run / "samples.parquet")
    samples.loc[samples.index[~samples["is_flipped"]][0], "is_flipped"] = True
    samples.to_parquet(run / "samples.parquet", index=False)
    view = load_evaluation_view(run)
    assert view is not None and view.stale and "60 samples / 9 flipped" in view.reason


def test_unknown_noise_gives_none_and_no_flips_a_note(run: Path) -> None:
    samples = pd.read_parquet(run / "samples.parquet")
    samples.assign(is_flipped=False).to_parquet(run / "samples.parquet", index=False)
    view = load_evaluation_view(run)
    assert view is not None and view.detection.empty and "no sample is flipped" in view.reason
    samples.drop(columns="is_flipped").to_parquet(run / "samples.parquet", index=False)
    assert load_evaluation_view(run) is None
    assert load_evaluation_view(run.parent / "missing") is None


def test_stamp_follows_the_report(run: Path) -> None:
    before = evaluation_stamp(run)
    write_evaluation(run)
    assert evaluation_stamp(run) != before
    assert evaluation_stamp(run)[:-1] == before[:-1]


def test_no_value_anywhere_in_the_report_raises(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every field of a full report replaced by every JSON type: a view, never an exception."""
    report = write_evaluation(run, retrain=True, cleanlab=True)
    live = view_module.live_rows(
        pd.read_parquet(run / "scores.parquet"), pd.read_parquet(run / "samples.parquet")
    )
    monkeypatch.setattr(view_module, "live_rows", lambda *_: live)  # only the JSON varies
    report["baselines"] = {"cleanlab": {"method": "m", "n_label_issues": 3, "notes": ["n"]}}
    paths: list[tuple] = [(k,) for k in report]
    paths += [("detection", 0, k) for k in report["detection"][0]]
    paths += [("compute", k) for k in report["compute"]]
    paths += [("retrain", k) for k in report["retrain"]]
    paths += [("retrain", "references", 0, k) for k in report["retrain"]["references"][0]]
    paths += [("retrain", "rows", 0, k) for k in report["retrain"]["rows"][0]]
    paths += [("baselines", "cleanlab", k) for k in report["baselines"]["cleanlab"]]
    for path in paths:
        for value in (None, "x", -1, 1.5, True, [], [1], {"a": 1}):
            bad = json.loads(json.dumps(report))
            node = bad
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            (run / EVALUATION_JSON).write_text(json.dumps(bad), encoding="utf-8")
            view = load_evaluation_view(run)
            assert view is not None, path
            assert not view.detection.empty, (path, value)


def test_a_plain_evaluation_keeps_showing_the_earlier_retraining(
    evaluated: tuple[Path, dict], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(evaluated[0], run)
    report = evaluation.evaluate_run(run, retrain=False, baselines=False, time_detectors=False)
    view = load_evaluation_view(run)
    assert view is not None and not view.stale and view.references is not None
    assert report.retrain is not None
    assert report.retrain.from_report_created == evaluated[1]["created"]
    assert "retrained for the report of" in view.retrain_caption


def test_a_version_1_report_is_read(run: Path) -> None:
    """The first writer's layout: no notes, detection rows without kind."""
    report = write_evaluation(run, retrain=True, cleanlab=True)
    old = json.loads(json.dumps(report))
    old["report_version"] = 1
    del old["notes"]
    for row in old["detection"]:
        del row["kind"]
    (run / EVALUATION_JSON).write_text(json.dumps(old), encoding="utf-8")
    view = load_evaluation_view(run)
    assert view is not None and view.source == "report" and not view.stale
    assert set(view.detection["kind"]) == {"gradient", "baseline"}
    assert view.trims is not None


def test_a_report_from_a_newer_ogad_is_stale(run: Path) -> None:
    report = write_evaluation(run)
    report["report_version"] = 99
    (run / EVALUATION_JSON).write_text(json.dumps(report), encoding="utf-8")
    view = load_evaluation_view(run)
    assert view is not None and view.source == "live" and view.stale
    assert (
        view.level == WARNING and "evaluation.json is stale: a newer ogad wrote it" in view.reason
    )
    assert "report version 99" in view.reason
    assert "ogad evaluate" in view.reason

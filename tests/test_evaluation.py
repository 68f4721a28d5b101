"""`ogad evaluate --baselines --retrain`: trimming plans, TracIn, cleanlab, retraining, errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ogad_core._internal import write_json_atomic, write_table_atomic
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.evaluation.baselines import import_cleanlab, tracin_self_influence
from ogad_core.evaluation.plans import n_to_trim, trim_plans
from ogad_core.evaluation.report import evaluate_run, format_report
from ogad_core.evaluation.schema import EVALUATION_JSON, EvaluationReport
from ogad_core.run.rundir import RunDir


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


@pytest.fixture(scope="module")
def evaluated(evaluated_digits, tmp_path_factory: pytest.TempPathFactory):
    """This module's copy of the digits run (300 samples, 30 flipped, 2 checkpoints) evaluated
    once with baselines and retraining (see conftest)."""
    run, before, report = evaluated_digits
    return _copy(run, tmp_path_factory.mktemp("eval") / "run"), before, report


# ---- pure parts -----------------------------------------------------------------------------


def test_n_to_trim_rounds_half_up() -> None:
    assert n_to_trim(8, 250) == 20  # the paper's moons study: the top 20 of 250
    assert n_to_trim(2.5, 300) == 8  # 7.5 -> 8
    assert n_to_trim(10, 4000) == 400
    assert n_to_trim(12.5, 4000) == 500


def test_trim_plans_remove_exactly_what_they_say() -> None:
    rng = np.random.default_rng(0)
    n = 200
    flags = np.zeros(n, dtype=bool)
    flags[rng.choice(n, 20, replace=False)] = True
    ranks = pd.DataFrame({"a_rank": rng.permutation(n) + 1, "b_rank": np.arange(1, n + 1)})
    plans = trim_plans(ranks, flags, methods=["a", "b"], trim_percents=[5, 10], seed=3)
    by = {(p.method, p.trim_percent): p for p in plans}
    oracle = by[("oracle_drop_flipped", None)]
    np.testing.assert_array_equal(oracle.keep, ~flags)  # drops exactly the flipped ones
    assert not oracle.clean_labels
    assert by[("none", None)].keep.all()
    clean = by[("oracle_clean_labels", None)]
    assert clean.keep.all() and clean.clean_labels
    for k, n_trim in ((5, 10), (10, 20)):
        for name in ("a", "b"):
            plan = by[(name, k)]
            trimmed = np.flatnonzero(~plan.keep)
            assert len(trimmed) == n_trim
            np.testing.assert_array_equal(
                np.sort(trimmed), np.sort(np.flatnonzero(ranks[f"{name}_rank"] <= n_trim))
            )
        assert (~by[("random", k)].keep).sum() == n_trim
    other = trim_plans(ranks, flags, methods=[], trim_percents=[10], seed=4)
    assert not np.array_equal(other[-1].keep, by[("random", 10)].keep)
    assert by[("b", 10)].key() != by[("a", 10)].key()
    assert by[("none", None)].key() != clean.key()


@pytest.mark.parametrize("bad", [0, 100, -1, float("nan")])
def test_trim_percent_out_of_range(bad: float) -> None:
    with pytest.raises(ConfigError, match="trim percentages"):
        trim_plans(
            pd.DataFrame({"a_rank": [1, 2]}),
            np.array([True, False]),
            methods=["a"],
            trim_percents=[bad],
            seed=0,
        )


def test_tracin_is_the_lr_weighted_sum_of_squared_norms(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gs = [rng.normal(size=(50, 7)).astype(np.float32) for _ in range(3)]
    paths = []
    for i, g in enumerate(gs):
        paths.append(tmp_path / f"g{i}.npy")
        np.save(paths[-1], g)
    lrs = [0.1, 0.01, 0.5]
    expected = sum(
        lr * (g.astype(np.float64) ** 2).sum(axis=1) for lr, g in zip(lrs, gs, strict=True)
    )
    np.testing.assert_allclose(tracin_self_influence(paths, lrs), expected, rtol=1e-12)
    np.testing.assert_allclose(
        tracin_self_influence(paths, 0.2),
        0.2 * sum((g.astype(np.float64) ** 2).sum(axis=1) for g in gs),
        rtol=1e-12,
    )
    with pytest.raises(ConfigError, match="learning rates"):
        tracin_self_influence(paths, [0.1, 0.2])


def test_missing_cleanlab_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cleanlab", None)
    with pytest.raises(ConfigError, match="pip install"):
        import_cleanlab()


# ---- a real evaluation on the digits run ----------------------------------------------------


def test_baselines_are_merged_into_scores(evaluated) -> None:
    run, before, _ = evaluated
    rd = RunDir(run)
    scores = rd.read_scores()
    for col in before.columns:  # nothing scored earlier is lost or changed
        np.testing.assert_array_equal(scores[col].to_numpy(), before[col].to_numpy())
    n = len(scores)
    for name in ("cleanlab", "tracin"):
        s, r = scores[f"{name}_score"].to_numpy(), scores[f"{name}_rank"].to_numpy()
        assert np.isfinite(s).all()
        assert sorted(r) == list(range(1, n + 1))
        assert s[r == 1][0] == s.max()  # higher score = more suspicious = rank 1
    assert {"cleanlab", "tracin"} <= set(rd.read_manifest()["detectors"])
    assert ((scores["cleanlab_score"] >= 0) & (scores["cleanlab_score"] <= 1)).all()


def test_tracin_column_matches_the_checkpoint_gradients(evaluated) -> None:
    run, _, report = evaluated
    k = RunDir(run).read_manifest()["dims"]["n_checkpoints"]
    assert k == 2
    grads = [np.load(run / "checkpoints" / "gradients_0.npy"), np.load(run / "gradients.npy")]
    lr = report.baselines.tracin.lr
    expected = sum(lr * np.sum(g.astype(np.float64) ** 2, axis=1) for g in grads)
    np.testing.assert_allclose(RunDir(run).read_scores()["tracin_score"], expected, rtol=1e-9)


def test_report_structure_and_values(evaluated) -> None:
    run, _, report = evaluated
    assert isinstance(report, EvaluationReport)
    assert report.data.n_train == 300 and report.data.n_flipped == 30
    assert report.data.n_test == 360
    rows = {r.detector: r for r in report.detection}
    assert set(rows) == {"iforest", "l2", "l1", "loss", "cleanlab", "tracin"}
    for r in rows.values():
        assert 0 <= r.auroc <= 1 and 0 <= r.average_precision <= 1
        assert 0 <= r.recall_at_n_flipped <= 1
        assert r.seconds is None or r.seconds >= 0
    assert rows["l2"].kind == "gradient" and rows["cleanlab"].kind == "baseline"
    cl = report.baselines.cleanlab
    assert cl.folds == 3 and 0 <= cl.n_label_issues <= 300
    comp = report.compute
    assert comp.best_gradient_detector in ("iforest", "l2", "l1")
    assert comp.cleanlab_over_best_gradient_compute_same_load > 0
    assert comp.auroc_gap_vs_cleanlab == pytest.approx(
        comp.best_gradient_auroc - comp.cleanlab_auroc, abs=1e-6
    )

    rt = report.retrain
    assert rt.seeds == [0] and rt.trim_percents == [10.0]
    assert rt.methods == ["l2", "cleanlab"]
    assert rt.reference("none").n_trimmed == 0
    assert rt.reference("oracle_drop_flipped").n_trimmed == 30
    assert rt.reference("oracle_clean_labels").n_trimmed == 0
    assert {r.method for r in rt.rows} == {"random", "l2", "cleanlab"}
    scores = RunDir(run).read_scores()
    flags = RunDir(run).read_samples()["is_flipped"].to_numpy()
    for name in ("l2", "cleanlab"):
        row = rt.row(name, 10.0)
        assert row.n_trimmed == 30
        top = scores[f"{name}_rank"].to_numpy() <= 30
        assert row.flipped_trimmed == int((top & flags).sum())
    for r in [*rt.references, *rt.rows]:
        assert len(r.accuracy) == 1 and 0 <= r.mean <= 1 and r.std is None
    # same recipe, same seed, all samples: the run's own model again
    assert rt.no_trim_reproduces_run is True
    assert rt.reference("none").mean == pytest.approx(
        RunDir(run).read_manifest()["model"]["test_accuracy"], abs=1e-6
    )


def test_report_is_written_and_formatted(evaluated) -> None:
    run, _, report = evaluated
    saved = json.loads((run / EVALUATION_JSON).read_text())
    assert saved == json.loads(json.dumps(report.to_json()))
    assert saved["report_version"] == 2 and saved["model"]["class"] == report.model.model_class
    assert EvaluationReport.from_json(saved) == report  # the file reads back to the same report
    text = format_report(report)
    for needle in ("AUROC", "cleanlab", "tracin", "oracle_drop_flipped", "trim 10% (30)", "random"):
        assert needle in text


def test_a_later_evaluation_keeps_the_baseline_info(evaluated) -> None:
    run, _, _ = evaluated
    report = evaluate_run(
        run,
        retrain=False,
        baselines=False,
        trim_percents=[10],
        seeds=1,
        time_detectors=False,
    )
    assert report.baselines.cleanlab.folds == 3
    assert {r.detector for r in report.detection} >= {"cleanlab", "tracin"}
    # the retraining results stay: l2 and cleanlab still have the scores they were trimmed by
    assert report.retrain.rows == evaluated[2].retrain.rows
    assert report.retrain.from_report_created == evaluated[2].created


def test_changed_scores_drop_the_old_retraining(evaluated, tmp_path: Path) -> None:
    run = _copy(evaluated[0], tmp_path / "run")
    scores = RunDir(run).read_scores()
    scores["l2_score"] = scores["l2_score"][::-1].to_numpy()  # l2 rescored differently
    write_table_atomic(scores, RunDir(run).scores_path)
    report = evaluate_run(run, retrain=False, baselines=False, time_detectors=False)
    assert report.retrain is None
    assert json.loads((run / EVALUATION_JSON).read_text())["retrain"] is None
    assert report.baselines.cleanlab is not None  # its column did not change


def test_plain_cli_evaluate_writes_the_report(evaluated, tmp_path: Path, capsys) -> None:
    from ogad_core.cli import main

    run = _copy(evaluated[0], tmp_path / "run")
    (run / EVALUATION_JSON).unlink()
    assert main(["evaluate", str(run), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    saved = json.loads((run / EVALUATION_JSON).read_text())
    assert [r["detector"] for r in saved["detection"]] == [r["detector"] for r in rows]
    assert saved["retrain"] is None and saved["data"]["n_flipped"] == 30


# ---- errors ---------------------------------------------------------------------------------


def test_run_without_known_noise(digits_run: Path, tmp_path: Path) -> None:
    run = _copy(digits_run, tmp_path / "run")
    rd = RunDir(run)
    write_table_atomic(
        rd.read_samples().drop(columns=["is_flipped", "clean_label"]), rd.samples_path
    )
    with pytest.raises(ConfigError, match="no known noise"):
        evaluate_run(run, retrain=True, baselines=False, trim_percents=[10], seeds=1)
    from ogad_core.cli import main

    assert main(["evaluate", str(run), "--retrain", "--trim", "10", "--seeds", "1"]) == 2


def test_run_without_test_split(digits_run: Path, tmp_path: Path) -> None:
    run = _copy(digits_run, tmp_path / "run")
    rd = RunDir(run)
    manifest = rd.read_manifest()
    manifest["data"]["n_test"] = 0
    write_json_atomic(rd.manifest_path, manifest)
    with pytest.raises(ConfigError, match="no held-out test split"):
        evaluate_run(run, retrain=True, baselines=False, trim_percents=[10], seeds=1)


def test_bad_arguments(evaluated, tmp_path: Path) -> None:
    run, _, _ = evaluated
    with pytest.raises(ConfigError, match="no scores for nope"):
        evaluate_run(
            run,
            retrain=True,
            baselines=False,
            trim_percents=[10],
            seeds=1,
            detectors=["nope"],
            time_detectors=False,
        )
    with pytest.raises(ConfigError, match="seeds"):
        evaluate_run(run, retrain=True, baselines=False, trim_percents=[10], seeds=0)
    with pytest.raises(ConfigError, match="trim percentages"):
        evaluate_run(run, retrain=True, baselines=False, trim_percents=[150], seeds=1)
    from ogad_core.cli import main

    assert main(["evaluate", str(run), "--retrain", "--detector", "nope", "--seeds", "1"]) == 2
    with pytest.raises(RunDirError):
        evaluate_run(
            tmp_path / "missing",
            retrain=False,
            baselines=True,
            trim_percents=[10],
            seeds=1,
        )


# ---- the schema -----------------------------------------------------------------------------


def test_detection_rows_hold_every_metric() -> None:
    from ogad_core.evaluation.schema import DetectionRow
    from ogad_core.scoring.metrics import TOP_FRACTIONS, detection_metrics

    metrics = detection_metrics(np.arange(20.0), np.arange(20) >= 17)
    row = DetectionRow.from_metrics("l2", metrics)
    assert row.kind == "gradient" and row.auroc == metrics["auroc"]
    assert set(TOP_FRACTIONS) == {f"precision_at_{p:g}pct" for p in row.precision_at()}
    assert DetectionRow.from_metrics("cleanlab", metrics).kind == "baseline"


def test_schema_reads_strictly_and_leniently(tmp_path: Path) -> None:
    from ogad_core.evaluation.schema import ReportError, read_report

    raw = {
        "report_version": 2,
        "detection": [{"detector": "l2", "auroc": 0.9}],
        "retrain": {"rows": 3},
        "compute": {"train_seconds": "fast"},
    }
    with pytest.raises(ReportError, match=r"(retrain\.rows|compute\.train_seconds).*1 more"):
        EvaluationReport.from_json(raw)
    path = tmp_path / EVALUATION_JSON
    path.write_text(json.dumps(raw))
    read = read_report(path)
    assert read.report.retrain is None and read.report.compute is None
    assert read.report.row("l2").auroc == 0.9
    assert any("retraining results" in p for p in read.problems)
    assert any("compute costs" in p for p in read.problems)
    for bad, message in (
        ({**raw, "detection": [{"detector": "l2", "auroc": True}]}, "auroc"),
        ({**raw, "detection": []}, "detection"),
        ({**raw, "report_version": "2"}, "no report_version"),
        ({**raw, "report_version": 3}, "newer ogad"),
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises(ReportError, match=message) as info:
            read_report(path)
        assert info.value.stale == (bad["report_version"] == 3)

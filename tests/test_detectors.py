"""Detectors in gradient space: agreement with sklearn / numpy, memmaps, per-class, ranks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM
from sklearn.utils.estimator_checks import parametrize_with_checks

from ogad_core import _internal
from ogad_core.errors import ConfigError, DataError
from ogad_core.scoring.detectors import (
    DETECTORS,
    GradientNormDetector,
    LossBaseline,
    detector_name,
    rank_scores,
    resolve_detector,
    score_table,
    suspicion_scores,
)
from ogad_core.scoring.metrics import detection_metrics


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """300 Gaussian rows (3 classes) with 15 rows pushed far out: (X, samples, is_outlier)."""
    rng = np.random.default_rng(7)
    n, d = 300, 24
    X = rng.normal(size=(n, d)).astype(np.float32)
    outlier = np.zeros(n, dtype=bool)
    outlier[rng.choice(n, size=15, replace=False)] = True
    X[outlier] += rng.normal(size=(15, d)).astype(np.float32) * 4.0 + 3.0
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "label": rng.integers(0, 3, size=n),
            "loss": rng.exponential(size=n) + 3.0 * outlier,
        }
    )
    return X, samples, outlier


def _robust_z(values: np.ndarray) -> np.ndarray:
    center = np.median(values)
    return (values - center) / (1.4826 * np.median(np.abs(values - center)))


# ---- agreement with direct computations ---------------------------------------------------------


def test_norm_detectors_equal_numpy_row_norms(planted):
    X, samples, _ = planted
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(
        suspicion_scores("l2", X, samples), np.linalg.norm(X64, axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(
        suspicion_scores("l1", X, samples), np.abs(X64).sum(axis=1), rtol=1e-12
    )
    est = GradientNormDetector(ord=1).fit(X)
    np.testing.assert_allclose(est.score_samples(X), -np.abs(X64).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_iforest_equals_sklearn_isolation_forest(planted, seed):
    X, samples, _ = planted
    expected = -IsolationForest(random_state=seed).fit(X).score_samples(X)
    got = suspicion_scores("iforest", X, samples, seed=seed)
    assert got.dtype == np.float64 and got.shape == (X.shape[0],)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_iforest_seed_changes_scores(planted):
    X, samples, _ = planted
    assert not np.allclose(
        suspicion_scores("iforest", X, samples, seed=0),
        suspicion_scores("iforest", X, samples, seed=1),
    )


def test_lof_scores_training_rows_by_negative_outlier_factor(planted):
    X, samples, _ = planted
    expected = -LocalOutlierFactor(n_neighbors=20).fit(X).negative_outlier_factor_
    np.testing.assert_allclose(suspicion_scores("lof", X, samples), expected, rtol=1e-12)
    # novelty=True would score each training row as its own neighbour through score_samples;
    # the training rows must still get negative_outlier_factor_.
    novelty = LocalOutlierFactor(n_neighbors=20, novelty=True)
    np.testing.assert_allclose(suspicion_scores(novelty, X, samples), expected, rtol=1e-12)


def test_lof_caps_neighbours_below_n_samples(planted):
    X = planted[0][:8]
    expected = -LocalOutlierFactor(n_neighbors=7).fit(X).negative_outlier_factor_
    np.testing.assert_allclose(suspicion_scores("lof", X, None), expected, rtol=1e-12)
    assert suspicion_scores("lof", X[:1], None).tolist() == [0.0]


def test_loss_and_selfconf_rank_like_the_loss(planted):
    X, samples, _ = planted
    loss = samples["loss"].to_numpy()
    np.testing.assert_array_equal(suspicion_scores("loss", None, samples), loss)
    selfconf = suspicion_scores("selfconf", X, samples)
    np.testing.assert_allclose(selfconf, 1.0 - np.exp(-loss), rtol=1e-12)
    table = score_table(None, samples, ["loss", "selfconf"])
    expected_rank = np.empty(len(loss), dtype=np.int64)
    expected_rank[np.argsort(-loss, kind="stable")] = np.arange(1, len(loss) + 1)
    np.testing.assert_array_equal(table["loss_rank"], expected_rank)
    np.testing.assert_array_equal(table["selfconf_rank"], expected_rank)


def test_loss_detectors_need_the_loss_column(planted):
    X, samples, _ = planted
    with pytest.raises(DataError, match="no 'loss' column"):
        suspicion_scores("loss", X, samples.drop(columns=["loss"]))
    bad = samples.assign(loss=samples["loss"].where(samples.index != 3))
    with pytest.raises(DataError, match="non-finite"):
        suspicion_scores("selfconf", X, bad)


# ---- any sklearn outlier estimator plugs in ----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reference"),
    [
        ("sklearn.covariance.EllipticEnvelope", EllipticEnvelope(random_state=5)),
        ("sklearn.svm:OneClassSVM", OneClassSVM()),
        ("sklearn.ensemble.IsolationForest", IsolationForest(random_state=5)),
    ],
)
def test_import_path_detectors_match_sklearn(planted, spec, reference):
    X, samples, _ = planted
    expected = -clone(reference).fit(X).score_samples(X)
    np.testing.assert_allclose(suspicion_scores(spec, X, samples, seed=5), expected, rtol=1e-10)


def test_resolve_detector_sets_random_state_and_keeps_defaults():
    est = resolve_detector("sklearn.covariance.EllipticEnvelope", seed=11)
    assert isinstance(est, EllipticEnvelope)
    assert est.random_state == 11
    assert est.get_params()["contamination"] == EllipticEnvelope().contamination
    from_class = resolve_detector(EllipticEnvelope, seed=12)
    assert isinstance(from_class, EllipticEnvelope) and from_class.random_state == 12
    forest = resolve_detector("iforest", seed=4)
    assert isinstance(forest, IsolationForest) and forest.random_state == 4
    ignore = ("random_state", "n_jobs")
    got = {k: v for k, v in forest.get_params().items() if k not in ignore}
    assert got == {k: v for k, v in IsolationForest().get_params().items() if k not in ignore}
    assert sorted(DETECTORS) == ["iforest", "l1", "l2", "lof", "loss", "selfconf"]


def test_estimator_instance_is_cloned_with_its_params(planted):
    X, samples, _ = planted
    user = IsolationForest(n_estimators=17, random_state=2)
    got = suspicion_scores(user, X, samples, seed=99)
    assert not hasattr(user, "estimators_")  # the caller's instance is not fitted
    expected = -IsolationForest(n_estimators=17, random_state=2).fit(X).score_samples(X)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_unknown_detector_names_the_known_ones():
    with pytest.raises(ConfigError) as info:
        resolve_detector("isoforest")
    message = str(info.value)
    assert "\n" not in message
    assert "'isoforest'" in message
    assert "iforest, l2, l1, lof, loss, selfconf" in message
    with pytest.raises(ConfigError, match="cannot import"):
        resolve_detector("no_such_module_xyz.Detector")
    with pytest.raises(ConfigError, match="not an outlier detector"):
        resolve_detector("sklearn.linear_model.LinearRegression")
    with pytest.raises(ConfigError, match="unknown detector"):
        score_table(None, pd.DataFrame({"loss": [1.0, 2.0]}), ["loss", "nope"])


def test_detector_column_names():
    assert detector_name("iforest") == "iforest"
    assert detector_name("L2") == "l2"
    assert detector_name("sklearn.ensemble.IsolationForest") == "isolationforest"
    assert detector_name("my.pkg:Fancy-Detector") == "fancy_detector"
    assert detector_name(OneClassSVM()) == "oneclasssvm"
    assert detector_name(EllipticEnvelope) == "ellipticenvelope"


# ---- memmaps and chunking ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def memmap_matrix(tmp_path_factory) -> tuple[np.memmap, np.ndarray]:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(3000, 400)).astype(np.float32)
    path = tmp_path_factory.mktemp("grad") / "gradients.npy"
    np.save(path, data)
    return np.load(path, mmap_mode="r"), data


def test_chunked_equals_unchunked_on_a_memmap(memmap_matrix, monkeypatch):
    mm, data = memmap_matrix
    whole = {name: suspicion_scores(name, data, None) for name in ("l2", "l1", "iforest")}
    monkeypatch.setattr(_internal, "CHUNK_BYTES", 128 * 400 * 4 + 3)  # 128 rows a chunk, ragged
    for name, expected in whole.items():
        np.testing.assert_allclose(suspicion_scores(name, mm, None), expected, rtol=1e-12)
    tiny = GradientNormDetector(ord=2, chunk_bytes=1).fit(mm)  # one row per chunk
    np.testing.assert_allclose(-tiny.score_samples(mm), whole["l2"], rtol=1e-12)


def test_memmap_is_not_loaded_whole(memmap_matrix):
    mm, _ = memmap_matrix
    matrix_bytes = mm.shape[0] * mm.shape[1] * mm.itemsize
    for name, chunk in (("l2", 64 * 1024), ("iforest", None)):
        est = GradientNormDetector(ord=2, chunk_bytes=chunk) if name == "l2" else "iforest"
        tracemalloc.start()
        try:
            suspicion_scores(est, mm, None)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < matrix_bytes / 4, (name, peak, matrix_bytes)


def test_non_finite_gradients_are_rejected(planted):
    X = planted[0].copy()
    X[17, 2] = np.nan
    with pytest.raises(DataError, match="row 17"):
        suspicion_scores("iforest", X, None)


# ---- per-class ---------------------------------------------------------------------------------


def test_per_class_norms_are_within_class_robust_z_scores():
    rng = np.random.default_rng(1)
    quiet = rng.normal(size=(60, 10))  # norms ~ 3
    loud = rng.normal(size=(60, 10)) * 5.0  # norms ~ 16
    quiet[4] = 3.0  # norm ~ 9.5: far out for its class, unremarkable among the loud class
    X = np.vstack([quiet, loud]).astype(np.float32)
    samples = pd.DataFrame({"sample_id": np.arange(120), "label": [0] * 60 + [1] * 60})
    norms = np.linalg.norm(X.astype(np.float64), axis=1)
    got = suspicion_scores("l2", X, samples, per_class=True)
    np.testing.assert_allclose(got[:60], _robust_z(norms[:60]), rtol=1e-10)
    np.testing.assert_allclose(got[60:], _robust_z(norms[60:]), rtol=1e-10)
    table = score_table(X, samples, ["l2"], per_class=True)
    assert table.loc[table["l2_rank"] == 1, "sample_id"].item() == 4
    assert score_table(X, samples, ["l2"])["l2_rank"][4] > 30  # globally it hides


def test_per_class_iforest_fits_one_forest_per_class(planted):
    X, samples, _ = planted
    got = suspicion_scores("iforest", X, samples, per_class=True, seed=2)
    for label in range(3):
        rows = np.flatnonzero(samples["label"].to_numpy() == label)
        raw = -IsolationForest(random_state=2).fit(X[rows]).score_samples(X[rows])
        np.testing.assert_allclose(got[rows], _robust_z(raw), rtol=1e-9)


def test_per_class_small_classes_still_rank_sensibly(planted):
    X, samples, _ = planted
    samples = samples.copy()
    far = np.full(X.shape[1], 25.0, dtype=np.float32)
    X = np.vstack([X, far, X[0] * 0.0])  # a lone far-out sample and a lone typical one
    samples = pd.concat(
        [samples, pd.DataFrame({"sample_id": [300, 301], "label": [9, 8], "loss": [1.0, 1.0]})],
        ignore_index=True,
    )
    for name in ("iforest", "l2", "lof"):
        scores = suspicion_scores(name, X, samples, per_class=True)
        assert np.isfinite(scores).all()
        assert scores[300] == scores.max(), name
        assert scores[301] < np.quantile(scores, 0.5), name


def test_per_class_needs_labels(planted):
    X, samples, _ = planted
    with pytest.raises(DataError, match="label"):
        suspicion_scores("iforest", X, samples.drop(columns=["label"]), per_class=True)


# ---- the scores table --------------------------------------------------------------------------


def test_score_table_columns_and_ranks(planted):
    X, samples, _ = planted
    shuffled = samples.assign(sample_id=np.random.default_rng(0).permutation(len(samples)) + 100)
    table = score_table(
        X, shuffled, ["iforest", "l2", "loss", "sklearn.covariance.EllipticEnvelope", "l2"]
    )
    names = ["iforest", "l2", "loss", "ellipticenvelope"]
    assert list(table.columns) == ["sample_id"] + [
        f"{n}_{c}" for n in names for c in ("score", "rank")
    ]
    np.testing.assert_array_equal(table["sample_id"], shuffled["sample_id"])
    n = len(samples)
    for name in names:
        scores, ranks = table[f"{name}_score"], table[f"{name}_rank"]
        assert scores.dtype == np.float64 and ranks.dtype == np.int64
        assert sorted(ranks) == list(range(1, n + 1))
        assert scores[ranks.idxmin()] == scores.max()
        ordered = table.sort_values(f"{name}_rank")[f"{name}_score"].to_numpy()
        assert (np.diff(ordered) <= 0).all()


def test_ranks_break_ties_by_sample_id():
    samples = pd.DataFrame({"sample_id": [40, 10, 30, 20, 50], "loss": [1.0, 2.0, 1.0, 1.0, 0.5]})
    table = score_table(None, samples, ["loss"])
    assert table["loss_rank"].tolist() == [4, 1, 3, 2, 5]
    ranks = rank_scores(np.array([np.nan, 3.0, 3.0, -1.0]), np.array([0, 9, 2, 5]))
    assert ranks.tolist() == [4, 2, 1, 3]


def test_planted_outliers_are_found(planted):
    X, samples, outlier = planted
    table = score_table(X, samples, ["iforest", "l2", "l1", "lof"])
    for name in ("iforest", "l2", "l1", "lof"):
        auroc = detection_metrics(table[f"{name}_score"], outlier)["auroc"]
        assert auroc > 0.9, (name, auroc)


# ---- the estimators themselves follow sklearn's API --------------------------------------------


def test_norm_and_loss_estimators_follow_sklearn_api(planted):
    X = planted[0]
    est = GradientNormDetector(ord=1, contamination=0.2)
    assert est.get_params() == {"ord": 1, "contamination": 0.2, "chunk_bytes": None}
    assert clone(est).get_params() == est.get_params()
    labels = est.fit_predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    assert (labels == -1).mean() == pytest.approx(0.2, abs=0.01)
    np.testing.assert_allclose(est.decision_function(X), est.score_samples(X) - est.offset_)
    with pytest.raises(TypeError):
        GradientNormDetector(2)  # keyword-only
    with pytest.raises(ConfigError, match="ord"):
        GradientNormDetector(ord=3).fit(X)
    with pytest.raises(ValueError, match="features"):
        GradientNormDetector().fit(X).score_samples(X[:, :5])
    loss = np.array([[0.1], [2.0], [0.3]])
    np.testing.assert_allclose(
        LossBaseline(transform="selfconf").fit(loss).score_samples(loss), np.exp(-loss[:, 0]) - 1
    )


@parametrize_with_checks([GradientNormDetector(), GradientNormDetector(ord=1)])
def test_gradient_norm_detector_passes_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---- detector plugins from the console script (as issue type plugins) ------------------------

DETECTOR_PLUGIN = """
import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin


class BoomFit(OutlierMixin, BaseEstimator):
    def fit(self, X, y=None):
        raise ValueError("kaboom in fit")

    def score_samples(self, X):
        return np.zeros(len(X))


class BoomScore(OutlierMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def score_samples(self, X):
        raise RuntimeError("kaboom in score_samples")


class Norm(OutlierMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def score_samples(self, X):
        return -np.linalg.norm(X, axis=1)
"""


def _ogad(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``ogad`` console script run in ``cwd`` (where the plugin module is), as the README
    tells a user to."""
    ogad = Path(sys.executable).parent / "ogad"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [str(ogad), *args, "--quiet"], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def _line(text: str) -> int:
    """The line of DETECTOR_PLUGIN that holds ``text`` (1-based)."""
    return next(i for i, ln in enumerate(DETECTOR_PLUGIN.splitlines(), 1) if text in ln)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("qa_det:BoomFit", f"your code failed at qa_det.py:{_line('kaboom in fit')}: ValueError"),
        (
            "qa_det:BoomScore",
            f"your code failed at qa_det.py:{_line('kaboom in score_')}: RuntimeError",
        ),
        ("qa_det:Nope", "module 'qa_det' has no attribute 'Nope'"),
    ],
)
def test_a_bad_detector_plugin_is_one_line_and_writes_nothing(
    digits_run: Path, tmp_path: Path, spec: str, message: str
) -> None:
    """`ogad score DIR --detector module:Class` (the console script, run in the plugin's folder):
    the plugin is found in the current folder (was "cannot import", as issue types were), an
    exception in its fit or score_samples is named by file:line, exit 2 (a ValueError in fit
    was "cannot be fit", anything else an internal error, exit 1); scores.parquet is kept."""
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (tmp_path / "qa_det.py").write_text(DETECTOR_PLUGIN)
    before = (run / "scores.parquet").read_bytes()
    proc = _ogad(["score", str(run), "--detector", f"l2,{spec}"], tmp_path)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and err[0].startswith("ogad: error: ") and message in err[0], err
    assert (run / "scores.parquet").read_bytes() == before


def test_a_detector_plugin_in_the_current_folder_scores(digits_run: Path, tmp_path: Path) -> None:
    """A plugin module beside the user (not on PYTHONPATH) is found, as ``--model`` and
    ``--issue-type`` find theirs, and its column joins scores.parquet."""
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (tmp_path / "qa_det.py").write_text(DETECTOR_PLUGIN)
    proc = _ogad(["score", str(run), "--detector", "qa_det:Norm"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_parquet(run / "scores.parquet")
    np.testing.assert_array_equal(scores["norm_rank"], scores["l2_rank"])


def test_compute_refuses_a_bad_detector_before_any_work(tmp_path: Path) -> None:
    """``ogad compute --detector`` with a plugin that does not resolve stops at once (as a bad
    ``--issue-type`` does), not after training and the gradients; no run folder is left."""
    (tmp_path / "qa_det.py").write_text(DETECTOR_PLUGIN)
    args = ["compute", "--data", "digits", "--limit", "300", "--run-dir", "run", "--device", "cpu"]
    proc = _ogad([*args, "--detector", "l2,qa_det:Nope"], tmp_path)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and "module 'qa_det' has no attribute 'Nope'" in err[0], err
    assert not (tmp_path / "run").exists()


def test_an_installed_packages_module_named_as_a_detector_is_not_the_users_code(
    tmp_path: Path, monkeypatch
) -> None:
    """A detector named by an installed package's private module (scikit-learn's
    ``sklearn.ensemble._iforest:IsolationForest``, or any package in site-packages): an error
    raised inside it is not the user's file:line (a ValueError in fit is the detector's
    "cannot be fit" line, as for the registered name); a module of the user's own, found in
    the current folder, still is."""
    from ogad_core.scoring.detectors import _fit_suspicion

    monkeypatch.setattr(_internal, "USER_CODE_FILES", set())
    bad = np.zeros((20, 0))  # no column: scikit-learn raises a ValueError in fit
    est = resolve_detector("sklearn.ensemble._iforest:IsolationForest")
    with pytest.raises(ConfigError, match="cannot be fit on 20 rows"):
        _fit_suspicion(est, bad, "isolationforest")
    site = tmp_path / "env" / "lib" / "site-packages" / "qa_installed"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    boom = "def boom():\n    raise ValueError('inside the package')\n"
    (site / "_impl.py").write_text(boom)
    (tmp_path / "qa_mine.py").write_text(boom)
    monkeypatch.syspath_prepend(str(site.parent))
    monkeypatch.chdir(tmp_path)
    for name, where in [("qa_installed._impl", None), ("qa_mine", "qa_mine.py:2")]:
        module = _internal.import_user_module(name)
        with pytest.raises(ValueError) as raised:
            module.boom()
        assert _internal.user_code_frame(raised.value) == where, name

"""Memory of one ``ogad compute``: a step's big matrices are freed when no later step reads them
(the features, model and weights before the file steps), and no step leaves a run matrix mapped
behind it. Behaviour (which objects are alive, which files are mapped), never sizes or times.
One small compute, watched at each step's start."""

from __future__ import annotations

import sys
import tracemalloc
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ogad_core import _internal
from ogad_core.options import ComputeConfig
from ogad_core.pipeline import workflow
from ogad_core.run.manifest import StepRecord
from ogad_core.testing import DIGITS_CONFIG

CONFIG = {**DIGITS_CONFIG, "checkpoints": 1, "detectors": ("l2", "loss")}
#: the steps watched, by their name in ``workflow`` (functions, or classes made per compute)
WATCHED = ("model_step", "predict_step", "gradient_step", "ScoreStep", "MapStep", "IssueStep")


def mapped_files(under: Path) -> list[str]:
    """The files under ``under`` this process has memory-mapped now (/proc/self/maps)."""
    root = str(under.resolve())
    maps = Path("/proc/self/maps").read_text(encoding="utf-8").splitlines()
    return sorted({line.split(maxsplit=5)[-1] for line in maps if root in line})


@dataclass
class Watch:
    """What the watched compute saw at each step's start."""

    run_dir: Path
    #: weak references to what the state steps made (taken after the gradient step)
    refs: dict[str, weakref.ref[Any]] = field(default_factory=dict)
    #: per step: which of ``refs`` were alive at its start
    alive: dict[str, dict[str, bool]] = field(default_factory=dict)
    #: per step: the run's files mapped at its start (and "end": after compute)
    mapped: dict[str, list[str]] = field(default_factory=dict)

    def step_starts(self, name: str) -> None:
        self.alive[name] = {k: ref() is not None for k, ref in self.refs.items()}
        self.mapped[name] = mapped_files(self.run_dir) if sys.platform == "linux" else []

    def wrap(self, name: str, step: Any) -> Any:
        def run(state: Any) -> StepRecord:
            self.step_starts(name)
            record = step(state)
            if name == "gradient_step":
                self.refs.update(
                    state=weakref.ref(state),
                    features=weakref.ref(state.inputs.x_train),
                    model=weakref.ref(state.model),
                )
            return record

        return run


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Watch:
    """One compute on 300 digits with every watched step wrapped."""
    watch = Watch(tmp_path_factory.mktemp("memory") / "run")
    with pytest.MonkeyPatch.context() as mp:
        for name in WATCHED:
            step = getattr(workflow, name)
            if isinstance(step, type):  # a step class: wrap each instance the list makes
                mp.setattr(
                    workflow, name, lambda *a, n=name, s=step, **k: watch.wrap(n, s(*a, **k))
                )
            else:
                mp.setattr(workflow, name, watch.wrap(name, step))
        manifest = workflow.compute(ComputeConfig(**CONFIG), watch.run_dir, progress=False)
    watch.step_starts("end")
    assert manifest["status"] == "complete"
    assert list(watch.alive) == [*WATCHED, "end"]
    return watch


def test_the_file_steps_run_after_the_features_and_model_are_freed(watched: Watch) -> None:
    assert watched.alive["gradient_step"] == {}  # the references are taken after it
    for name in ("ScoreStep", "MapStep", "IssueStep", "end"):
        assert watched.alive[name] == {"state": False, "features": False, "model": False}, name


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
def test_no_step_leaves_a_run_matrix_mapped(watched: Watch) -> None:
    assert {name: files for name, files in watched.mapped.items() if files} == {}


def test_the_chunked_covariance_is_scikit_learns_ledoit_wolf() -> None:
    from sklearn.covariance import LedoitWolf

    from ogad_core.space.covariance import class_means_and_covariance

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12)).astype(np.float32) * rng.uniform(0.1, 3.0, 12)
    labels = rng.integers(0, 5, 3000)
    rows = np.sort(rng.choice(3000, 2000, replace=False))
    classes = np.array([0, 1, 3])  # rows of classes 2 and 4 are left out
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_internal, "CHUNK_BYTES", 4096)  # many chunks
        means, cov = class_means_and_covariance(X, rows, labels[rows], classes)
    Xf, yf = X[rows].astype(np.float64), labels[rows]
    expected_means = np.stack([Xf[yf == c].mean(axis=0) for c in classes])
    keep = np.isin(yf, classes)
    resid = Xf[keep] - expected_means[np.searchsorted(classes, yf[keep])]
    np.testing.assert_allclose(means, expected_means, rtol=1e-12, atol=1e-12)
    expected = LedoitWolf(assume_centered=True).fit(resid).covariance_
    np.testing.assert_allclose(cov, expected, rtol=1e-10, atol=1e-14)


def test_the_outlier_distances_hold_no_full_float64_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Mahalanobis fit and distances hold at most a chunk of rows, not (N, d) float64
    copies of the matrix (they held 5.6 GiB at 100,000 x 1,024)."""
    from ogad_core.issues.mahalanobis import class_mahalanobis

    rng = np.random.default_rng(1)
    X = rng.normal(size=(20_000, 64)).astype(np.float32)
    labels = rng.integers(0, 10, len(X))
    full = X.shape[0] * X.shape[1] * 8  # one float64 copy: 10 MiB
    monkeypatch.setattr(_internal, "CHUNK_BYTES", 2**20)
    tracemalloc.start()
    try:
        dist = class_mahalanobis(X, labels, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dist.shape == (len(X),) and np.isfinite(dist).all()
    assert peak < full / 2, f"{peak / 2**20:.1f} MiB traced at the peak"


def _traced_peak(fn: Any) -> tuple[Any, int]:
    """fn()'s result and the bytes tracemalloc saw at its peak (numpy reports to it)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_image_statistics_are_computed_row_chunk_by_row_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outlier type's input statistics of (N, 256) signatures hold a chunk of rows, not
    (N, 256) float64 copies (8 of them at once: 16 KB a row, 16 GB at 1,000,000 images),
    and any chunks give the whole array's values (the scaling is over every row)."""
    from ogad_core.issues.features import image_statistics, signature_statistics

    rng = np.random.default_rng(2)
    S = rng.random((20_000, 256)).astype(np.float32)
    S[::7] = 0.0  # blank
    S[3] = np.nan  # undecodable
    monkeypatch.setattr(_internal, "CHUNK_BYTES", 2**20)
    out, peak = _traced_peak(lambda: signature_statistics(S))
    full = S.shape[0] * S.shape[1] * 8  # one float64 copy: 41 MB
    assert peak < full / 2, f"{peak / 2**20:.1f} MiB traced at the peak"
    raw = image_statistics(S)  # every row at once
    scale = raw.std(axis=0)
    whole = (raw - np.median(raw, axis=0)) / np.where(scale > 1e-9, scale, 1.0)
    np.testing.assert_array_equal(out, whole.astype(np.float32))


def test_the_fourier_magnitudes_are_computed_row_chunk_by_row_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The duplicate type's shift-invariant candidate space holds its (N, 144) float32 result
    and a chunk of rows, not the transform of every row at once (4.6 KB a row), with the
    whole array's values."""
    from ogad_core.issues.base import fourier_magnitude

    rng = np.random.default_rng(3)
    S = rng.random((20_000, 256)).astype(np.float32)
    S[5] = np.nan
    images = np.nan_to_num(S).reshape(-1, 16, 16)  # every row at once
    images = images - images.mean(axis=(1, 2), keepdims=True)
    whole = np.abs(np.fft.rfft2(images)).reshape(len(S), -1).astype(np.float32)
    monkeypatch.setattr(_internal, "CHUNK_BYTES", 2**20)
    out, peak = _traced_peak(lambda: fourier_magnitude(S))
    full = S.shape[0] * S.shape[1] * 8
    assert peak < out.nbytes + full / 4, f"{peak / 2**20:.1f} MiB traced at the peak"
    np.testing.assert_array_equal(out, whole)

"""bench_issues' issue pass at scale reports the pass's own peak memory beside the process's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs")
def test_the_issue_pass_peak_leaves_out_the_setup(tmp_path: Path, monkeypatch) -> None:
    """A setup that briefly held 400 MB raises the process's peak, not the issue pass's own
    (the kernel's peak mark reset when the pass starts); the process's peak is still
    reported (the reset lowers ``ru_maxrss`` too)."""
    import benchmarks.bench_evidence as bench_evidence
    from benchmarks.bench_issues import scale_run

    made = bench_evidence.synthetic_run

    def heavy_setup(n: int, tmp: Path, *args: Any) -> Any:
        scratch = np.ones(50_000_000)  # 400 MB resident, freed before the pass
        del scratch
        return made(n, tmp, *args)

    monkeypatch.setattr(bench_evidence, "synthetic_run", heavy_setup)
    peaks = scale_run(2000, tmp_path, with_evidence=False, types=("outlier",))["max_rss_gb"]
    assert peaks["setup"] >= peaks["resident_before_pass"] + 0.3  # GB (2**30 bytes)
    assert peaks["issue_pass"] < peaks["setup"] - 0.2
    assert peaks["process"] == max(peaks["setup"], peaks["issue_pass"])
    assert peaks["with_evidence"] == peaks["process"]


def test_the_scale_bench_plants_outliers_outside_the_copies_and_fitted_flips() -> None:
    """0.1% of the rows (none of the planted copies or their sources) become inputs made
    another way (block-upscaled small digits, photo crops); a share of the flipped labels
    become ones the model fitted: predicted as filed, with the loss and confidence of a
    clean row it gets right, the other rows unchanged."""
    import pandas as pd

    from benchmarks.bench_issues import _fitted_flips, _planted_outliers

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (5000, 28, 28), dtype=np.uint8)
    before = x.copy()
    taken = np.arange(0, 5000, 2)
    rows = _planted_outliers(x, taken)
    changed = np.flatnonzero((x != before).any(axis=(1, 2)))
    assert len(rows) == 5 and np.array_equal(changed, rows) and not np.isin(rows, taken).any()
    assert (x[rows[0], :2] == 0).all()  # the upscaled digit's padding
    n = 1000
    flipped = rng.random(n) < 0.1
    label = rng.integers(0, 10, n)
    pred = np.where(flipped, (label + 1) % 10, label)
    samples = pd.DataFrame(
        {"label": label, "pred": pred, "confidence": rng.random(n), "loss": rng.random(n) + 2}
    )
    out, fitted = _fitted_flips(samples, flipped, share=0.5)
    assert fitted.sum() == int(0.5 * flipped.sum()) and not fitted[~flipped].any()
    assert (out["pred"][fitted] == label[fitted]).all()
    clean_losses = set(samples["loss"][~flipped])
    assert set(out["loss"][fitted]) <= clean_losses
    assert out[~fitted].equals(samples[~fitted])

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

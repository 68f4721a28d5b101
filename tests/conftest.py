"""Shared fixtures: small real data, a tiny computed run (session-scoped, computed once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = ROOT / "sample_data"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run on 300 sklearn digits with 10% symmetric noise (2 epochs, 2 checkpoints)."""
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    run_dir = tmp_path_factory.mktemp("digits_run")
    from ogad_core.testing import DIGITS_CONFIG

    config = ComputeConfig(**DIGITS_CONFIG)
    compute(config, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def evaluated_digits(digits_run: Path, tmp_path_factory: pytest.TempPathFactory):
    """(run, scores before, report): a copy of ``digits_run`` evaluated once with baselines
    (3-fold cleanlab, TracIn) and retraining (trim 10%, l2 and cleanlab, one seed).

    Shared by several test files: copy the run before changing anything in it.
    """
    import shutil

    from ogad_core.evaluation.report import evaluate_run
    from ogad_core.run.rundir import RunDir

    run = tmp_path_factory.mktemp("evaluated") / "run"
    shutil.copytree(digits_run, run)
    before = RunDir(run).read_scores()
    report = evaluate_run(
        run,
        retrain=True,
        baselines=True,
        trim_percents=[10],
        seeds=1,
        detectors=["l2", "cleanlab"],
        folds=3,
    )
    return run, before, report

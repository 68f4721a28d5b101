"""``compute``: the whole pipeline as a short sequence of steps over one :class:`RunState`.

data -> model -> predictions -> gradients -> scores -> map. Each step records a fingerprint of
its inputs in the manifest; a step already done under the same fingerprint is reused, a changed
input is refused rather than mixed, and the gradient step resumes row by row after a kill.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ogad_core._internal import log
from ogad_core.options import ComputeConfig
from ogad_core.pipeline.data_step import data_step, model_inputs
from ogad_core.pipeline.gradient_step import gradient_step
from ogad_core.pipeline.model_step import model_step, predict_step
from ogad_core.pipeline.score_step import make_map, score
from ogad_core.pipeline.state import RunState, open_run
from ogad_core.run.heal import heal_manifest, heal_tables, remove_stale_temporaries
from ogad_core.run.lock import run_lock
from ogad_core.run.rundir import RunDir

#: above this many rows LOF (quadratic) is left out of the default detectors
LOF_MAX_ROWS = 10_000


def compute(
    config: ComputeConfig, run_dir: str | os.PathLike[str], *, progress: bool = True
) -> dict[str, Any]:
    """Run (or resume, or reuse) the whole pipeline in ``run_dir``; returns the manifest (JSON).

    Holds the run directory's lock throughout; damaged outputs of an earlier run are set aside
    and rebuilt (each reported in one line)."""
    created = not Path(run_dir).exists()
    try:
        with run_lock(run_dir, "compute", create=True):
            return _compute(config, RunDir(run_dir), progress)
    except BaseException:
        if created:
            _remove_if_only_lock(RunDir(run_dir))
        raise


def _remove_if_only_lock(rd: RunDir) -> None:
    """Remove a run directory this compute created that holds nothing but its lock file (a
    compute that failed before writing anything leaves no folder behind)."""
    try:
        if {p.name for p in rd.path.iterdir()} <= {rd.lock_path.name}:
            rd.lock_path.unlink(missing_ok=True)
            rd.path.rmdir()
    except OSError:
        pass


def _compute(config: ComputeConfig, rd: RunDir, progress: bool) -> dict[str, Any]:
    import torch

    from ogad_core.engine.models import resolve_device

    if remove_stale_temporaries(rd):
        log.info("removed temporary files a killed run left behind")
    manifest_note = heal_manifest(rd)
    if manifest_note:
        log.warning(manifest_note)
    state = RunState(config=config, rd=rd, manifest=open_run(config, rd), progress=progress)
    for note in heal_tables(rd, state.manifest.steps):
        log.warning(note)
    state.device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    verified = state.manifest.step_fingerprint("data") is not None  # data checked against it
    data_fp = data_step(state)
    _tie_reviews(state, verified)
    state.inputs = model_inputs(config, state.data, rd, state.device, progress)
    model_step(state, data_fp)
    predict_step(state)
    gradient_step(state)
    score(
        rd.path,
        default_detectors(config, state.manifest.n_samples),
        per_class=config.per_class,
        seed=config.seed,
        manifest=state.manifest,
    )
    make_map(rd.path, seed=config.seed, manifest=state.manifest)
    state.manifest.status = "complete"
    state.save()
    return state.manifest.to_json()


def _tie_reviews(state: RunState, verified: bool) -> None:
    """Set decisions made on other inputs (sample ids, given labels) aside, never apply them."""
    import numpy as np

    from ogad_core.review.store import set_aside_foreign_reviews

    train = state.data.train
    ids = np.arange(len(train), dtype=np.int64)
    set_aside_foreign_reviews(
        state.rd, ids, np.asarray(train.labels), state.data.label_names, verified=verified
    )


def default_detectors(config: ComputeConfig, n_samples: int) -> list[str]:
    """The configured detectors, less LOF above :data:`LOF_MAX_ROWS` rows."""
    detectors = list(config.detectors)
    if "lof" in detectors and n_samples > LOF_MAX_ROWS:
        detectors.remove("lof")
        log.info(
            f"scores: lof skipped by default above {LOF_MAX_ROWS} rows "
            "(ask for it with `ogad score --detector lof`)"
        )
    return detectors

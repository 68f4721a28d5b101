"""``compute``: the whole pipeline as a short sequence of steps over one :class:`RunState`.

data -> encoder features -> model -> predictions -> gradients -> scores -> map -> issues. Each
step records a fingerprint of its inputs in the manifest; a step already done under the same
fingerprint is reused, a changed input is refused rather than mixed, and the encoder and
gradient steps resume row by row after a kill.
"""

from __future__ import annotations

import ctypes
import gc
import os
from pathlib import Path
from typing import Any

from ogad_core._internal import log
from ogad_core.data.sources import check_spec_path
from ogad_core.options import ComputeConfig
from ogad_core.pipeline.data_step import data_step
from ogad_core.pipeline.encode_step import encode_step
from ogad_core.pipeline.gradient_step import gradient_step
from ogad_core.pipeline.issue_step import IssueStep
from ogad_core.pipeline.model_step import model_step, predict_step
from ogad_core.pipeline.score_step import EvidenceStep, MapStep, ScoreStep
from ogad_core.pipeline.state import FileStep, RunState, Step, open_run
from ogad_core.run.heal import heal_manifest, heal_tables, remove_stale_temporaries
from ogad_core.run.lock import run_lock
from ogad_core.run.rundir import RunDir


def compute(
    config: ComputeConfig, run_dir: str | os.PathLike[str], *, progress: bool = True
) -> dict[str, Any]:
    """Run (or resume, or reuse) the whole pipeline in ``run_dir``; returns the manifest (JSON).

    Holds the run directory's lock throughout; damaged outputs of an earlier run are set aside
    and rebuilt (each reported in one line)."""
    from ogad_core.scoring.detectors import check_detectors

    if config.holdout:
        check_spec_path(config.holdout, "--holdout")
    check_detectors(config.detectors, config.seed)  # before any training, as --issue-type
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


def steps(config: ComputeConfig) -> list[Step]:
    """``compute`` is this list, run in order: the state steps over one :class:`RunState`,
    then the file steps over the run's files alone."""
    return [*state_steps(), *file_steps(config)]


def state_steps() -> list[Step]:
    """The steps that hand objects to the next (data, features, model, weights)."""
    return [data_step, encode_step, model_step, predict_step, gradient_step]


def file_steps(config: ComputeConfig) -> list[FileStep]:
    """The steps that read only the run's files (they also run standalone)."""
    return [
        ScoreStep(per_class=config.per_class, seed=config.seed),
        MapStep(seed=config.seed),
        EvidenceStep(seed=config.seed),
        IssueStep(seed=config.seed, holdout=config.holdout, workers=config.workers),
    ]


def release_memory() -> None:
    """Free what a finished step left: objects in reference cycles (``gc``), then the heap
    pages glibc keeps for reuse (``malloc_trim``; elsewhere nothing)."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl)
        return
    libc.malloc_trim(0)


def _compute(config: ComputeConfig, rd: RunDir, progress: bool) -> dict[str, Any]:
    import torch

    from ogad_core.engine.executors import engine_session
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
    with engine_session(config):  # one Ray connection for the encoder and gradient passes
        for step in state_steps():
            step(state)
            release_memory()
    files = state.files()
    del state  # the features, model and weights: no file step reads them
    release_memory()
    for file_step in file_steps(config):
        file_step(files)
        release_memory()
    files.manifest.status = "complete"
    files.save()
    return files.manifest.to_json()

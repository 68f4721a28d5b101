"""Step 1, data: load the spec (with any injected noise), record what it is, write the
thumbnails and tie the reviews to the samples."""

from __future__ import annotations

import time

import numpy as np

from ogad_core._internal import log
from ogad_core.data import LoadedData, load_data, with_noise
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.options import ComputeConfig, encoder_problem, fingerprint
from ogad_core.pipeline.state import RunState
from ogad_core.run.manifest import StepRecord
from ogad_core.run.rundir import RunDir


def load_run_data(config: ComputeConfig, rd: RunDir) -> LoadedData:
    """The run's data: the spec loaded (subset by ``limit``), with the configured label noise."""
    data = load_data(
        config.data,
        run_dir=rd.path,
        image_size=config.image_size,
        limit=config.limit,
        seed=config.seed,
        allow_outside=config.allow_outside,
        max_pixels=config.max_pixels,
    )
    if config.noise:
        data = with_noise(data, rate=config.noise, kind=config.noise_kind, seed=config.seed)
    return data


def data_step(state: RunState) -> StepRecord:
    """Load the data into ``state``; refuse data changed under a run. Returns its record."""
    started = time.perf_counter()
    data = load_run_data(state.config, state.rd)
    problem = encoder_problem(state.config.encoder, data.kind)  # csv: known once read
    if problem:
        raise ConfigError(f"encoder {problem}", param="encoder")
    data_fp = fingerprint(data.fingerprint(), data.noise)
    old_fp = state.manifest.step_fingerprint("data")
    verified = old_fp is not None  # the data is checked against it below
    if old_fp and old_fp != data_fp:
        raise RunDirError(
            f"the data behind {state.config.data} changed since {state.rd.path} was computed; "
            "use another run directory"
        )
    state.data = data
    state.manifest.data = {
        "spec": data.spec,
        "kind": data.kind,
        "label_names": data.label_names,
        "n_samples": len(data.train),
        "n_test": 0 if data.test is None else len(data.test),
        "n_classes": data.n_classes,
        "noise": data.noise,
        "data_roots": data.data_roots,
    }
    state.manifest.label_names = data.label_names
    _write_thumbnails(state)
    record = state.mark("data", data_fp, started)
    _tie_reviews(state, verified)
    flipped = f", {data.noise['n_flipped']} labels flipped" if data.noise else ""
    log.info(f"data: {data.spec}, {len(data.train)} samples, {data.n_classes} classes{flipped}")
    return record


def _write_thumbnails(state: RunState) -> None:
    """Small JPEGs of the user's image files (once), so the dashboard never opens an original,
    and in the same decode pass the input properties of the issue types (inputs.parquet)."""
    from ogad_core.issues.inputs import record_inputs

    record_inputs(state.rd, state.data.train.inputs, workers=state.config.workers)


def _tie_reviews(state: RunState, verified: bool) -> None:
    """Set decisions made on other inputs (sample ids, given labels) aside, never apply them."""
    from ogad_core.review.store import set_aside_foreign_reviews

    train = state.data.train
    ids = np.arange(len(train), dtype=np.int64)
    set_aside_foreign_reviews(
        state.rd, ids, np.asarray(train.labels), state.data.label_names, verified=verified
    )

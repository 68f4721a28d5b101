"""Step 4, gradients: each sample's loss gradient with its given label, at the final model and at
every earlier checkpoint, streamed into resumable stores (gradients.npy, checkpoints/)."""

from __future__ import annotations

import time

from ogad_core._internal import log
from ogad_core.options import fingerprint
from ogad_core.pipeline.state import RunState
from ogad_core.run.manifest import StepRecord
from ogad_core.run.store import GradientStore


def gradient_step(state: RunState) -> StepRecord:
    """Fill one GradientStore per checkpoint (resuming finished rows); record the dims."""
    from ogad_core.engine.executors import engine_session
    from ogad_core.engine.models import state_fingerprint

    started = time.perf_counter()
    config, n = state.config, len(state.data.train)
    dim = config.proj_dim or state.full_dim
    from ogad_core.engine.projection import PROJECTION_ID

    # parts added later only when they differ from the old behaviour (old runs keep their stores)
    extra = [p for p in (PROJECTION_ID if config.proj_dim else None,) if p]
    if config.precision != "fp32":
        extra.append(config.precision)
    grad_fp = fingerprint(
        state.params,
        config.proj_dim,
        config.seed,
        [state_fingerprint(s) for s in state.states],
        *extra,
    )
    with engine_session(config):
        for k, weights in enumerate(state.states):
            path = state.rd.gradients_path_at(k, len(state.states))
            store = GradientStore(path, n_rows=n, n_cols=dim, fingerprint=fingerprint(grad_fp, k))
            _report_store(store, path.name, n)
            if not store.complete:
                state.model.load_state_dict(weights)
                _fill(state, store)
    state.model.load_state_dict(state.states[-1])
    state.manifest.params = state.params
    state.manifest.dims = {
        "input": list(state.inputs.input_shape),
        "gradient": state.full_dim,
        "proj_dim": config.proj_dim,
        "stored": dim,
        "n_checkpoints": len(state.states),
    }
    record = state.mark("gradients", grad_fp, started)
    state.fresh_gradients = True
    projected = f", projected from {state.full_dim}" if config.proj_dim else ""
    log.info(f"gradients: {n} x {dim} ({state.params}{projected})")
    return record


def _report_store(store: GradientStore, name: str, n: int) -> None:
    """Say what a reopened store kept: discarded, damaged blocks, or rows left to resume."""
    if store.discarded is not None:
        log.warning(f"{name}: {store.discarded}; recomputing every row")
    if store.damage is not None:
        log.warning(f"{store.damage.describe(name)}; recomputing them")
    if store.resumed and not store.complete:
        log.info(f"gradients: resuming, {len(store.pending())} of {n} rows left")


def _fill(state: RunState, store: GradientStore) -> None:
    """Compute the store's pending rows with the model's current weights (locally or on Ray:
    the one execution API, :mod:`ogad_core.engine.executors`)."""
    from ogad_core.engine.datasets import as_batches
    from ogad_core.engine.executors import executor_for
    from ogad_core.engine.gradients import compute_gradients

    inputs = state.inputs
    config = state.config
    compute_gradients(
        state.model,
        as_batches(inputs.x_train, inputs.y_train),
        state.params,
        batch_size=config.batch_size,
        device=str(state.device),
        proj_dim=config.proj_dim,
        seed=config.seed,
        out=store,
        progress=state.progress,
        workers=config.workers,
        precision=config.precision,
        executor=executor_for(config, progress=state.progress),
    )

"""Step 2, the encoder pass: a pretrained encoder's features of every image (``--encoder
torchvision:NAME``) or text (the sentence encoder), for the head the model step trains.

The features go through the one resumable row store into the run's ``embeddings/`` (one matrix
per split, keyed by encoder, weights and inputs), computed by the executor of ``--engine``
(this process, or Ray). The step's fingerprint is those keys: a rerun with the same inputs reuses
the finished matrices (and keeps the record of the pass that made them), a killed run resumes at
the first batch not done. The manifest records the rows computed, seconds and rows per second.
Runs without an encoder pass (raw images, tabular data, LoRA or last-block fine-tuning) skip the
step and record nothing.
"""

from __future__ import annotations

import time
from typing import Any

from ogad_core._internal import log
from ogad_core.options import fingerprint
from ogad_core.pipeline.state import RunState
from ogad_core.run.manifest import StepRecord

#: the step's name in the manifest
STEP = "encode"


def encode_step(state: RunState) -> StepRecord:
    """Compute (or reuse, or resume) the run's encoder features; record the pass."""
    started = time.perf_counter()
    kind = _pass_kind(state)
    if kind is None:
        return StepRecord(fingerprint="", status="skipped")
    passes = _image_passes(state) if kind == "images" else _text_passes(state)
    step_fp = fingerprint(*(p.key for p in passes))
    runs = [p.run for p in passes if p.run is not None]
    previous = state.manifest.steps.get(STEP)
    if not runs and previous is not None and previous.fingerprint == step_fp:
        log.info(f"encoder: reusing the {kind[:-1]} features")
        return previous
    rows = sum(r.n_rows for r in runs)
    seconds = time.perf_counter() - started
    record = state.mark(
        STEP,
        step_fp,
        started,
        **{kind: rows, f"{kind}_per_s": round(rows / seconds, 2) if seconds > 0 else None},
        engine=state.config.engine,
        encoder=state.config.encoder,
        shards=sum(r.n_shards for r in runs),
    )
    log.info(f"encoder: {rows} {kind} in {seconds:.1f} s ({rows / max(seconds, 1e-9):.1f}/s)")
    return record


def _pass_kind(state: RunState) -> str | None:
    """``images``, ``texts`` or None: what this run's encoder pass encodes (its model kind
    says, :mod:`ogad_core.engine.kinds`)."""
    from ogad_core.pipeline.model_step import model_kind

    kind = model_kind(state.config, state.data.kind)
    return kind.encoder_pass(state.config, state.data.kind)


def _image_passes(state: RunState) -> list[Any]:
    """One pass per split (train, then test) into the run's embeddings/."""
    from ogad_core.engine.executors import executor_for
    from ogad_core.engine.image_encoder import encoder_pass
    from ogad_core.engine.kinds.image import image_files

    config, data, rd = state.config, state.data, state.rd
    splits = [data.train] + ([data.test] if data.test is not None else [])
    log.info(f"encoding {sum(len(s) for s in splits)} images with {config.encoder}")
    return [
        encoder_pass(
            image_files(split, rd, config),
            str(config.encoder),
            weights=config.weights,
            device=str(state.device),
            batch_size=min(config.batch_size, 64),
            workers=config.workers,
            cache_dir=rd.embeddings_dir,
            precision=config.precision,
            progress=state.progress,
            executor=executor_for(config, progress=state.progress),
        )
        for split in splits
    ]


def _text_passes(state: RunState) -> list[Any]:
    """The texts of train and test as one matrix, in the run's embeddings/."""
    from ogad_core.engine import text_encoder
    from ogad_core.engine.executors import executor_for

    config, data = state.config, state.data
    texts = list(data.train.inputs) + (list(data.test.inputs) if data.test is not None else [])
    encoder = text_encoder.resolve_encoder(config.encoder)
    log.info(f"encoding {len(texts)} texts with {config.encoder or text_encoder.DEFAULT_ENCODER}")
    done = text_encoder.text_pass(
        texts,
        encoder=encoder,
        batch_size=64,
        device=str(state.device),
        cache_dir=state.rd.embeddings_dir,
        progress=state.progress,
        executor=executor_for(config, progress=state.progress),
    )
    return [done]

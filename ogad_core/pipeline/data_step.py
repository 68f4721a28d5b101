"""Step 1, data: load the spec (with any injected noise) and record what it is; then the inputs
the model consumes (text runs encode their texts once, cached in the run)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ogad_core._internal import log
from ogad_core.data import LoadedData, load_data, with_noise
from ogad_core.errors import RunDirError
from ogad_core.options import ComputeConfig, fingerprint
from ogad_core.pipeline.state import ModelInputs, RunState
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
    )
    if config.noise:
        data = with_noise(data, rate=config.noise, kind=config.noise_kind, seed=config.seed)
    return data


def data_step(state: RunState) -> str:
    """Load the data into ``state``; refuse data changed under a run. Returns its fingerprint."""
    started = time.perf_counter()
    data = load_run_data(state.config, state.rd)
    data_fp = fingerprint(data.fingerprint(), data.noise)
    old_fp = state.manifest.step_fingerprint("data")
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
    state.mark("data", data_fp, started)
    flipped = f", {data.noise['n_flipped']} labels flipped" if data.noise else ""
    log.info(f"data: {data.spec}, {len(data.train)} samples, {data.n_classes} classes{flipped}")
    return data_fp


def model_inputs(
    config: ComputeConfig, data: LoadedData, rd: RunDir, device: object, progress: bool
) -> ModelInputs:
    """Tensors the model consumes for train and test (text: encoder features or token ids)."""
    import torch

    y_train = torch.as_tensor(data.train.labels)
    y_test = None if data.test is None else torch.as_tensor(data.test.labels)
    if data.kind != "text":
        x_test = None if data.test is None else torch.as_tensor(data.test.inputs)
        return ModelInputs(torch.as_tensor(data.train.inputs), y_train, x_test, y_test)
    x_train, x_test, truncated = _text_inputs(config, data, rd, device, progress)
    return ModelInputs(x_train, y_train, x_test, y_test, truncated)


def _text_inputs(
    config: ComputeConfig, data: LoadedData, rd: RunDir, device: object, progress: bool
) -> tuple[Any, Any, np.ndarray]:
    """(train, test, truncated): sentence features, or token ids when fine-tuning with LoRA."""
    import torch

    from ogad_core.engine import lora, text_encoder

    encoder = text_encoder.resolve_encoder(config.encoder)
    texts = list(data.train.inputs) + (list(data.test.inputs) if data.test is not None else [])
    n = len(data.train)
    has_test = data.test is not None
    if config.finetune == "lora":
        ids, flags = lora.tokenize(texts, encoder=encoder)
        return ids[:n], (ids[n:] if has_test else None), np.asarray(flags[:n], dtype=bool)
    log.info(f"encoding {len(texts)} texts with {config.encoder or text_encoder.DEFAULT_ENCODER}")
    if config.engine == "ray":
        from ogad_core.engine.ray_engine import encode_texts_ray

        emb = encode_texts_ray(
            texts,
            encoder=encoder,
            cache_dir=rd.embeddings_dir,
            device=str(device),
            ray_address=config.ray_address,
        )
    else:
        emb = text_encoder.encode_texts(
            texts,
            encoder=encoder,
            batch_size=64,
            device=str(device),
            cache_dir=rd.embeddings_dir,
            progress=progress,
        )
    flags = text_encoder.truncation_flags(list(data.train.inputs), encoder=encoder)
    emb_t = torch.as_tensor(np.asarray(emb, dtype=np.float32))
    return emb_t[:n], (emb_t[n:] if has_test else None), np.asarray(flags)

"""Step 1, data: load the spec (with any injected noise) and record what it is; then the inputs
the model consumes (text runs encode their texts once, cached in the run)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ogad_core._internal import log
from ogad_core.data import LoadedData, load_data, with_noise
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.options import ComputeConfig, encoder_problem, fingerprint
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
        max_pixels=config.max_pixels,
    )
    if config.noise:
        data = with_noise(data, rate=config.noise, kind=config.noise_kind, seed=config.seed)
    return data


def data_step(state: RunState) -> str:
    """Load the data into ``state``; refuse data changed under a run. Returns its fingerprint."""
    started = time.perf_counter()
    data = load_run_data(state.config, state.rd)
    problem = encoder_problem(state.config.encoder, data.kind)  # csv: known once read
    if problem:
        raise ConfigError(f"encoder {problem}", param="encoder")
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
    _write_thumbnails(state)
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
    if data.kind == "image":
        x_train, x_test = _image_inputs(config, data, rd, device, progress)
        return ModelInputs(x_train, y_train, x_test, y_test)
    if data.kind != "text":
        x_test = None if data.test is None else torch.as_tensor(data.test.inputs)
        return ModelInputs(torch.as_tensor(data.train.inputs), y_train, x_test, y_test)
    x_train, x_test, truncated = _text_inputs(config, data, rd, device, progress)
    return ModelInputs(x_train, y_train, x_test, y_test, truncated)


def _write_thumbnails(state: RunState) -> None:
    """Small JPEGs of the user's image files (once), so the dashboard never opens an original."""
    from ogad_core.data.images import ImageFiles, write_thumbnails

    files = state.data.train.inputs
    if isinstance(files, ImageFiles):
        written = write_thumbnails(files, state.rd.thumbnail_path, workers=state.config.workers)
        if written:
            log.info(f"data: {written} thumbnails written for the dashboard")


def _image_files(split: Any, rd: RunDir, config: ComputeConfig) -> Any:
    """A split's image files: the user's, or the PNGs a sample set wrote into the run."""
    from pathlib import Path

    from ogad_core.data.images import ImageFiles, scan_images

    if isinstance(split.inputs, ImageFiles):
        return split.inputs
    paths = [p if Path(p).is_absolute() else rd.path / p for p in split.refs]
    return scan_images(paths, config.image_size, config.data, max_pixels=config.max_pixels)


def _image_inputs(
    config: ComputeConfig, data: LoadedData, rd: RunDir, device: object, progress: bool
) -> tuple[Any, Any]:
    """(train, test) image inputs: pretrained encoder features (cached in the run), streamed
    files (through the encoder's or the user's transform), or the sample set's arrays."""
    import torch

    from ogad_core.engine import image_encoder
    from ogad_core.engine.datasets import ImageBatches

    splits = [data.train] + ([data.test] if data.test is not None else [])
    if image_encoder.is_image_encoder(config.encoder) and config.finetune != "last-block":
        log.info(f"encoding {sum(len(s) for s in splits)} images with {config.encoder}")
        feats = [
            torch.as_tensor(
                image_encoder.encode_images(
                    _image_files(s, rd, config),
                    str(config.encoder),
                    weights=config.weights,
                    device=str(device),
                    batch_size=min(config.batch_size, 64),
                    workers=config.workers,
                    cache_dir=rd.embeddings_dir,
                    precision=config.precision,
                    progress=progress,
                )
            )
            for s in splits
        ]
        return feats[0], (feats[1] if len(feats) > 1 else None)
    out: list[Any]
    if config.finetune == "last-block":
        out = [
            image_encoder.encoder_batches(
                _image_files(s, rd, config), str(config.encoder), s.labels
            )
            for s in splits
        ]
    elif config.transform:
        tf = image_encoder.load_transform(config.transform)
        out = [ImageBatches(_image_files(s, rd, config), s.labels, transform=tf) for s in splits]
    else:
        out = [
            s.inputs if not isinstance(s.inputs, np.ndarray) else torch.as_tensor(s.inputs)
            for s in splits
        ]
    return out[0], (out[1] if len(out) > 1 else None)


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

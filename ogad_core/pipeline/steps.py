"""The compute pipeline: data -> model -> predictions -> gradients -> scores -> map.

Each step records a fingerprint in the manifest; a step whose fingerprint is already recorded
as done is reused, a changed input is refused rather than mixed, and the gradient step resumes
row by row after a kill.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core import __version__
from ogad_core._internal import utc_now, write_bytes_atomic, write_table_atomic
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.options import ComputeConfig, fingerprint
from ogad_core.run.rundir import SCHEMA_VERSION, RunDir

Log = Callable[[str], None]
LOF_MAX_ROWS = 10_000


def _stderr(msg: str) -> None:
    print(f"ogad: {msg}", file=sys.stderr, flush=True)


# ---- manifest helpers ----------------------------------------------------------------------


def _open_run(config: ComputeConfig, rd: RunDir) -> dict[str, Any]:
    """The manifest to continue (same inputs) or a new one; refuses a different run."""
    if rd.has_manifest():
        manifest = rd.read_manifest()
        old = ComputeConfig.from_dict(manifest.get("config", {"data": "?"})).identity()
        new = config.identity()
        diffs = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new[k]]
        if diffs:
            raise RunDirError(
                f"{rd.path} holds a run with other inputs ({'; '.join(diffs)}); "
                "use another --run-dir (or delete this one)"
            )
        manifest["config"] = config.to_dict()
        return manifest
    if rd.path.exists() and not rd.path.is_dir():
        raise RunDirError(f"--run-dir {rd.path} is a file, not a folder")
    if rd.path.is_dir() and any(p.name != "data" for p in rd.path.iterdir()):
        raise RunDirError(f"--run-dir {rd.path} is not empty and holds no ogad run")
    try:
        rd.path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"cannot create --run-dir {rd.path}: {err.strerror}") from None
    return {
        "schema_version": SCHEMA_VERSION,
        "ogad_version": __version__,
        "created": utc_now(),
        "config": config.to_dict(),
        "status": "incomplete",
        "steps": {},
        "fingerprints": {},
    }


def _save(rd: RunDir, manifest: dict[str, Any]) -> None:
    manifest["updated"] = utc_now()
    try:
        rd.write_manifest(manifest)
    except OSError as err:
        raise RunDirError(f"cannot write to {rd.path}: {err.strerror}") from None


def _done(manifest: dict[str, Any], step: str, fp: str) -> bool:
    s = manifest["steps"].get(step, {})
    return s.get("status") == "done" and s.get("fingerprint") == fp


def _mark(manifest: dict[str, Any], step: str, fp: str, t0: float, **extra: Any) -> None:
    manifest["steps"][step] = {
        "status": "done",
        "fingerprint": fp,
        "seconds": round(time.perf_counter() - t0, 3),
        "finished": utc_now(),
        **extra,
    }
    manifest["fingerprints"][step] = fp


# ---- steps ---------------------------------------------------------------------------------


def effective_params(config: ComputeConfig) -> str:
    """``auto`` -> ``last``, or the LoRA adapters when fine-tuning with LoRA."""
    if config.params != "auto":
        return config.params
    if config.finetune == "lora":
        from ogad_core.engine.lora import lora_param_patterns

        return ",".join(lora_param_patterns())
    return "last"


def load_run_data(config: ComputeConfig, rd: RunDir):
    from ogad_core.data import load_data, with_noise

    data = load_data(
        config.data,
        run_dir=rd.path,
        image_size=config.image_size,
        limit=config.limit,
        seed=config.seed,
    )
    if config.noise:
        data = with_noise(data, rate=config.noise, kind=config.noise_kind, seed=config.seed)
    return data


def model_inputs(config: ComputeConfig, data, rd: RunDir, device, log: Log, progress: bool):
    """Tensors the model consumes for (train, test), plus text truncation flags."""
    import torch

    truncated = None
    if data.kind != "text":
        test = None if data.test is None else torch.as_tensor(data.test.inputs)
        return torch.as_tensor(data.train.inputs), test, truncated
    from ogad_core.engine import lora, text_encoder

    encoder = text_encoder.resolve_encoder(config.encoder)
    texts = list(data.train.inputs) + (list(data.test.inputs) if data.test is not None else [])
    n = len(data.train)
    if config.finetune == "lora":
        ids, flags = lora.tokenize(texts, encoder=encoder)
        truncated = np.asarray(flags[:n], dtype=bool)
        return ids[:n], (ids[n:] if data.test is not None else None), truncated
    log(f"encoding {len(texts)} texts with {config.encoder or text_encoder.DEFAULT_ENCODER}")
    emb = text_encoder.encode_texts(
        texts,
        encoder=encoder,
        batch_size=64,
        device=str(device),
        cache_dir=rd.path / "embeddings",
        progress=progress,
    )
    truncated = np.asarray(text_encoder.truncation_flags(list(data.train.inputs), encoder=encoder))
    emb = torch.as_tensor(np.asarray(emb, dtype=np.float32))
    return emb[:n], (emb[n:] if data.test is not None else None), truncated


def model_recipe(config: ComputeConfig, kind: str):
    """The training recipe of a run: the built-in one for its kind, with --epochs / --lr."""
    from ogad_core.engine.train import TrainRecipe, default_recipe

    if kind == "text" and not config.finetune and not config.model:
        from ogad_core.engine.text_head import TEXT_HEAD_RECIPE

        recipe = TrainRecipe(**TEXT_HEAD_RECIPE)
    elif config.finetune == "lora":  # the encoder trains too: few epochs on CPU
        recipe = TrainRecipe(epochs=3, lr=5e-4, weight_decay=0.0, batch_size=32)
    else:
        recipe = default_recipe(kind)
    return replace(recipe, epochs=config.epochs or recipe.epochs, lr=config.lr or recipe.lr)


#: training this many times the built-in recipe's epochs counts as long (memorisation risk)
LONG_TRAINING_FACTOR = 3


def long_training_hint(config: ComputeConfig, kind: str, epochs: int) -> str | None:
    """A hint to keep checkpoints when ``epochs`` is long compared with the built-in recipe.

    Measured on mnist5k with 20% asymmetric noise (docs/benchmarks.md): at the built-in 8 epochs
    the final model's gradients find the flipped labels best (l2 AUROC 0.980 vs 0.969 with all
    checkpoints), at 30 and 60 epochs the checkpoints' gradients do (0.980 vs 0.959, 0.974 vs
    0.815), because the final model has memorised the wrong labels.
    """
    base = model_recipe(replace(config, epochs=None), kind).epochs
    if epochs < LONG_TRAINING_FACTOR * base or config.checkpoints > 1:
        return None
    return (
        f"hint: {epochs} epochs is long (the built-in recipe trains {base}); a model trained "
        "long memorises mislabeled samples and hides them from its final gradients. "
        "Add --checkpoints 6 and run `ogad score DIR --embedding checkpoints` "
        "(see docs/benchmarks.md, checkpoint gradients)"
    )


def build_model(
    config: ComputeConfig,
    kind: str,
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    train_inputs=None,
):
    """The model a run uses (untrained, or the user's checkpoint loaded).

    ``train_inputs`` (N, E) text embeddings set the built-in text head's standardisation.
    """
    from ogad_core.engine.models import build_user_model, builtin_model

    if config.finetune == "lora":
        from ogad_core.engine import lora, text_encoder, text_head

        return lora.build_lora_classifier(
            encoder=text_encoder.resolve_encoder(config.encoder),
            n_classes=n_classes,
            seed=config.seed,
        )
    if config.model:
        ckpt = Path(config.checkpoint) if config.checkpoint else None
        return build_user_model(
            config.model, n_classes=n_classes, input_shape=input_shape, checkpoint=ckpt
        )
    if kind == "text":
        from ogad_core.engine import lora, text_encoder, text_head

        return text_head.build_text_head(
            n_classes=n_classes,
            embeddings=train_inputs,
            in_features=input_shape[0],
            seed=config.seed,
        )
    return builtin_model(kind, input_shape, n_classes)


def check_model_fits(model, x, n_classes: int, device) -> None:
    """The model takes the data's inputs and outputs one logit per label, else ModelError."""
    import torch

    from ogad_core.errors import ModelError

    model.to(device).eval()
    try:
        with torch.no_grad():
            out = model(x.to(device))
    except Exception as err:
        raise ModelError(
            f"the model cannot take inputs of shape {tuple(x.shape[1:])}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ModelError("the model must return logits of shape (batch, n_classes)")
    if out.shape[1] != n_classes:
        raise ModelError(
            f"the model outputs {out.shape[1]} classes but the data has {n_classes} labels"
        )


def _file_fp(path: str | None) -> str | None:
    if not path:
        return None
    import hashlib

    p = Path(path).expanduser()
    if not p.is_file():
        from ogad_core.errors import ModelError

        raise ModelError(f"--checkpoint: file not found: {p}")
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def compute(
    config: ComputeConfig, run_dir: str | Path, *, log: Log = _stderr, progress: bool = True
) -> dict[str, Any]:
    """Run (or resume, or reuse) the whole pipeline in ``run_dir``. Returns the manifest."""
    import torch

    from ogad_core.engine.models import resolve_device, state_fingerprint
    from ogad_core.engine.train import predict, train_model

    rd = RunDir(run_dir)
    manifest = _open_run(config, rd)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)

    # 1. data
    t0 = time.perf_counter()
    data = load_run_data(config, rd)
    data_fp = fingerprint(data.fingerprint(), data.noise)
    old_fp = manifest["steps"].get("data", {}).get("fingerprint")
    if old_fp and old_fp != data_fp:
        raise RunDirError(
            f"the data behind {config.data} changed since {rd.path} was computed; "
            "use another --run-dir"
        )
    manifest["data"] = {
        "spec": data.spec,
        "kind": data.kind,
        "label_names": data.label_names,
        "n_samples": len(data.train),
        "n_test": 0 if data.test is None else len(data.test),
        "n_classes": data.n_classes,
        "noise": data.noise,
        "data_roots": data.data_roots,
    }
    manifest["label_names"] = data.label_names
    _mark(manifest, "data", data_fp, t0)
    _save(rd, manifest)
    log(
        f"data: {data.spec}, {len(data.train)} samples, {data.n_classes} classes"
        + (f", {data.noise['n_flipped']} labels flipped" if data.noise else "")
    )

    # 2. model
    t0 = time.perf_counter()
    x_train, x_test, truncated = model_inputs(config, data, rd, device, log, progress)
    y_train = torch.as_tensor(data.train.labels)
    y_test = torch.as_tensor(data.test.labels) if data.test is not None else None
    input_shape = tuple(x_train.shape[1:])
    model = build_model(config, data.kind, input_shape, data.n_classes, train_inputs=x_train)
    check_model_fits(model, x_train[:2], data.n_classes, device)
    from ogad_core.engine.gradients import compute_gradients, gradient_dim

    params = effective_params(config)
    full_dim = gradient_dim(model, params)  # a bad --params fails before any training
    recipe = model_recipe(config, data.kind)
    train_fp = fingerprint(
        data_fp,
        config.model,
        _file_fp(config.checkpoint),
        config.finetune,
        config.encoder,
        str(recipe),
        config.checkpoints,
        config.seed,
    )
    model_dir = rd.path / "model"
    final_path = model_dir / "final.pt"
    n_ckpt = config.checkpoints
    ckpt_paths = [model_dir / f"checkpoint_{k}.pt" for k in range(n_ckpt)]
    reused: dict[str, Any] | None = None
    if config.checkpoint:
        states = [{k: v.detach().clone() for k, v in model.state_dict().items()}]
        trained = False
    elif _done(manifest, "train", train_fp) and all(p.is_file() for p in ckpt_paths):
        states = [torch.load(p, map_location="cpu", weights_only=True) for p in ckpt_paths]
        model.load_state_dict(states[-1])
        trained = False
        reused = dict(manifest["steps"]["train"])  # keeps the seconds of the real training
        log("model: reusing the trained model")
    else:
        log(f"model: training {type(model).__name__} for {recipe.epochs} epochs on {device}")
        hint = long_training_hint(config, data.kind, recipe.epochs)
        if hint:
            log(hint)
        states = train_model(
            model,
            x_train,
            y_train,
            recipe=recipe,
            seed=config.seed,
            device=device,
            n_checkpoints=n_ckpt,
            progress=progress,
        )
        model_dir.mkdir(exist_ok=True)
        for k, st in enumerate(states):
            _torch_save(st, model_dir / f"checkpoint_{k}.pt")
        trained = True
    if not config.checkpoint:
        _torch_save(states[-1], final_path)
    model.to(device).eval()
    test_acc = None
    if x_test is not None:
        pred_t, *_ = predict(model, x_test, y_test, batch_size=config.batch_size, device=device)
        test_acc = float((pred_t == data.test.labels).mean())
    model_fp = state_fingerprint(model.state_dict())
    manifest["model"] = {
        "spec": config.model
        or ("lora:" + (config.encoder or "default") if config.finetune else "builtin"),
        "class": type(model).__name__,
        "checkpoint": config.checkpoint,
        "n_checkpoints": len(states),
        "recipe": str(recipe),
        "test_accuracy": test_acc,
        "device": str(device),
    }
    manifest["fingerprints"]["model_weights"] = model_fp
    _mark(manifest, "train", train_fp, t0, trained=trained, test_accuracy=test_acc)
    if reused is not None and reused.get("trained"):
        step = manifest["steps"]["train"]
        step.update(
            seconds=reused.get("seconds"),
            trained=True,
            finished=reused.get("finished"),
            reused=True,
            reuse_seconds=step["seconds"],
        )
    _save(rd, manifest)
    if test_acc is not None:
        log(f"model: test accuracy {test_acc:.4f}")

    # 3. predictions -> samples.parquet
    t0 = time.perf_counter()
    pred, conf, loss, _ = predict(
        model, x_train, y_train, batch_size=config.batch_size, device=device
    )
    bad = np.flatnonzero(~np.isfinite(loss))
    if len(bad):
        from ogad_core.errors import ModelError

        raise ModelError(
            f"the model gives NaN or infinite outputs for {len(bad)} samples "
            f"(first sample_id {bad[0]}); check the weights and the data"
        )
    names = np.array(data.label_names, dtype=object)
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(len(data.train), dtype=np.int64),
            "ref": data.train.refs,
            "label": data.train.labels.astype(np.int64),
            "label_name": names[data.train.labels],
            "pred": pred,
            "pred_name": names[pred],
            "confidence": conf,
            "loss": loss,
        }
    )
    if data.is_flipped is not None:
        samples["is_flipped"] = data.is_flipped
        samples["clean_label"] = data.clean_labels.astype(np.int64)
    if truncated is not None:
        samples["truncated"] = truncated
    write_table_atomic(samples, rd.samples_path)
    _mark(manifest, "predict", fingerprint(train_fp, model_fp), t0)
    _save(rd, manifest)

    # 4. gradients (final model, plus each earlier checkpoint)
    t0 = time.perf_counter()
    from torch.utils.data import TensorDataset

    from ogad_core.run.store import GradientStore

    dim = config.proj_dim or full_dim
    grad_fp = fingerprint(
        params, config.proj_dim, config.seed, [state_fingerprint(s) for s in states]
    )
    dataset = TensorDataset(x_train, y_train)
    stores = []
    for k, state in enumerate(states):
        last = k == len(states) - 1
        path = rd.gradients_path if last else rd.path / "checkpoints" / f"gradients_{k}.npy"
        store = GradientStore(
            path, n_rows=len(data.train), n_cols=dim, fingerprint=fingerprint(grad_fp, k)
        )
        if store.resumed and not store.complete:
            log(f"gradients: resuming, {len(store.pending())} of {len(data.train)} rows left")
        if not store.complete:
            model.load_state_dict(state)
            compute_gradients(
                model,
                dataset,
                params,
                batch_size=config.batch_size,
                device=str(device),
                proj_dim=config.proj_dim,
                seed=config.seed,
                out=store,
                progress=progress,
            )
        stores.append(store)
    model.load_state_dict(states[-1])
    manifest["params"] = params
    manifest["dims"] = {
        "input": list(input_shape),
        "gradient": full_dim,
        "proj_dim": config.proj_dim,
        "stored": dim,
        "n_checkpoints": len(states),
    }
    _mark(manifest, "gradients", grad_fp, t0)
    _save(rd, manifest)
    log(
        f"gradients: {len(data.train)} x {dim} ({params}"
        + (f", projected from {full_dim}" if config.proj_dim else "")
        + ")"
    )

    # 5. scores, 6. map
    detectors = list(config.detectors)
    if "lof" in detectors and len(data.train) > LOF_MAX_ROWS:
        detectors.remove("lof")
        log(
            f"scores: lof skipped by default above {LOF_MAX_ROWS} rows "
            "(ask for it with `ogad score --detector lof`)"
        )
    score(
        rd.path, detectors, per_class=config.per_class, seed=config.seed, log=log, manifest=manifest
    )
    make_map(rd.path, seed=config.seed, log=log, manifest=manifest)
    manifest["status"] = "complete"
    _save(rd, manifest)
    return manifest


def _torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` atomically; saved through memory so the bytes do not depend on a temp name."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())


# ---- score / map / evaluate (torch-free) ---------------------------------------------------


def _require(rd: RunDir, step: str, manifest: dict[str, Any]) -> None:
    if manifest.get("steps", {}).get(step, {}).get("status") != "done":
        raise RunDirError(f"{rd.path} has no finished {step} step; run `ogad compute` first")


def load_embeddings(rd: RunDir, manifest: dict[str, Any], embedding: str = "final") -> np.ndarray:
    """The gradient embeddings to score: ``final`` (gradients.npy, (N, D)) or ``checkpoints``
    (each checkpoint's gradients side by side, (N, K * D))."""
    final = np.load(rd.gradients_path, mmap_mode="r")
    if embedding == "final":
        return final
    if embedding != "checkpoints":
        raise ConfigError(f"--embedding must be final or checkpoints, got {embedding!r}")
    k = manifest.get("dims", {}).get("n_checkpoints", 1)
    parts = [
        np.load(rd.path / "checkpoints" / f"gradients_{i}.npy", mmap_mode="r") for i in range(k - 1)
    ]
    return np.hstack([*parts, final]) if parts else final


def score(
    run_dir: str | Path,
    detectors: list[str],
    *,
    per_class: bool = False,
    seed: int = 0,
    embedding: str = "final",
    log: Log = _stderr,
    manifest: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Score the run's gradients with ``detectors``; writes scores.parquet (merging columns
    of detectors scored earlier). Returns the written table."""
    from ogad_core.scoring.detectors import score_table

    rd = RunDir(run_dir)
    manifest = manifest if manifest is not None else rd.read_manifest()
    _require(rd, "gradients", manifest)
    t0 = time.perf_counter()
    grads = load_embeddings(rd, manifest, embedding)
    samples = rd.read_samples()
    table = score_table(grads, samples, detectors, per_class=per_class, seed=seed)
    if embedding != "final":
        table = table.rename(
            columns={
                c: c.replace("_score", "_ckpt_score").replace("_rank", "_ckpt_rank")
                for c in table.columns
                if c != "sample_id"
            }
        )
    if rd.scores_path.is_file():
        old = rd.read_scores()
        if len(old) == len(table) and (old["sample_id"].to_numpy() == table["sample_id"]).all():
            keep = [c for c in old.columns if c != "sample_id" and c not in table.columns]
            table = pd.concat([table, old[keep]], axis=1)
    write_table_atomic(table, rd.scores_path)
    names = [c[: -len("_score")] for c in table.columns if c.endswith("_score")]
    manifest["detectors"] = names
    manifest["scoring"] = {"per_class": per_class, "seed": seed, "embedding": embedding}
    _mark(
        manifest,
        "scores",
        fingerprint(manifest["fingerprints"].get("gradients"), names, per_class, seed, embedding),
        t0,
    )
    _save(rd, manifest)
    log(f"scores: {', '.join(names)}")
    return table


def make_map(
    run_dir: str | Path,
    *,
    seed: int = 0,
    log: Log = _stderr,
    manifest: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """2-D UMAP map of the gradient embeddings -> map.parquet (cached by fingerprint)."""
    rd = RunDir(run_dir)
    manifest = manifest if manifest is not None else rd.read_manifest()
    _require(rd, "gradients", manifest)
    fp = fingerprint(manifest["fingerprints"].get("gradients"), seed)
    if _done(manifest, "map", fp) and rd.map_path.is_file():
        log("map: reusing the cached map")
        return rd.read_map()
    from ogad_core.scoring.gradient_map import gradient_map

    t0 = time.perf_counter()
    log("map: UMAP of the gradient embeddings (the first run compiles numba: ~30 s)")
    xy = gradient_map(np.load(rd.gradients_path, mmap_mode="r"), seed=seed)
    table = pd.DataFrame(
        {
            "sample_id": np.arange(xy.shape[0], dtype=np.int64),
            "x": xy[:, 0].astype(np.float32),
            "y": xy[:, 1].astype(np.float32),
        }
    )
    write_table_atomic(table, rd.map_path)
    _mark(manifest, "map", fp, t0)
    _save(rd, manifest)
    return table


def evaluate(run_dir: str | Path) -> pd.DataFrame:
    """Detection quality of every scored detector against the run's known noise."""
    from ogad_core.scoring.metrics import evaluation_table

    rd = RunDir(run_dir)
    rd.read_manifest()
    samples = rd.read_samples()
    if "is_flipped" not in samples.columns:
        raise ConfigError(
            f"{rd.path} has no known noise (is_flipped); compute it with --noise to evaluate"
        )
    return evaluation_table(rd.read_scores(), samples)

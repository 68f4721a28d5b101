"""Steps 2 and 3, model and predictions: build the model (built-in, text head, LoRA or the
user's), train it or reuse / load its weights, then predict every sample -> samples.parquet."""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import log, one_line, write_bytes_atomic, write_table_atomic
from ogad_core.errors import ModelError
from ogad_core.options import ComputeConfig, check_proj_dim, fingerprint
from ogad_core.pipeline.state import RunState
from ogad_core.run.manifest import StepRecord

#: training this many times the built-in recipe's epochs counts as long (memorisation risk):
#: 2.5 x the image recipe's 12 is the 30 epochs measured in docs/benchmarks.md
LONG_TRAINING_FACTOR = 2.5


def model_recipe(config: ComputeConfig, kind: str) -> Any:
    """The training recipe (a TrainRecipe) of the run's model kind, with ``--epochs`` / ``--lr``."""
    from ogad_core.engine.kinds import model_kind_for

    recipe = model_kind_for(config, kind).recipe(config, kind)
    return replace(recipe, epochs=config.epochs or recipe.epochs, lr=config.lr or recipe.lr)


def long_training_hint(config: ComputeConfig, kind: str, epochs: int) -> str | None:
    """A hint to keep checkpoints when ``epochs`` is long compared with the built-in recipe.

    Measured on mnist5k with 20% asymmetric noise (docs/benchmarks.md), best AUROC of the
    gradient detectors on the final model vs on all checkpoints: at the built-in 12 epochs about
    the same (0.975 vs 0.977; at 8 epochs 0.980 vs 0.969), at 30 and 60 epochs the checkpoints'
    gradients are clearly better (0.980 vs 0.959, 0.974 vs 0.815), because the final model has
    memorised the wrong labels.
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
    train_inputs: Any = None,
) -> Any:
    """The model a run uses (untrained, or the user's checkpoint loaded), built by the first
    registered model kind that matches (:mod:`ogad_core.engine.kinds`).

    ``train_inputs`` (N, E) text embeddings set the built-in text head's standardisation.
    """
    from ogad_core.engine.kinds import model_kind_for

    builder = model_kind_for(config, kind)
    return builder.build(config, kind, input_shape, n_classes, train_inputs)


def check_model_fits(model: Any, x: Any, n_classes: int, device: Any) -> None:
    """The model takes the data's inputs and outputs one logit per label, else ModelError."""
    import torch

    model.to(device).eval()
    try:
        with torch.no_grad():
            out = model(x.to(device))
    except Exception as err:
        raise ModelError(
            f"the model cannot take inputs of shape {tuple(x.shape[1:])}: "
            f"{type(err).__name__}: {one_line(err)}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ModelError("the model must return logits of shape (batch, n_classes)")
    if out.shape[1] != n_classes:
        raise ModelError(
            f"the model outputs {out.shape[1]} classes but the data has {n_classes} labels"
        )
    from ogad_core.engine.heads import check_logits

    check_logits(out)  # probabilities (a final softmax) are refused before any training


def file_fingerprint(path: str | None) -> str | None:
    """sha256 (16 hex chars) of a weights file, None when no file is given."""
    if not path:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"checkpoint: file not found: {p}", param="checkpoint")
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` atomically; saved through memory so the bytes do not depend on a temp name."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())


# ---- step 2: the model ----------------------------------------------------------------------


def model_step(state: RunState) -> StepRecord:
    """Make the model's inputs, build the model, then train it, reuse the trained weights or
    take the user's checkpoint. Returns the ``train`` record."""
    from ogad_core.engine.gradients import gradient_dim
    from ogad_core.pipeline.data_step import model_inputs

    started = time.perf_counter()
    config, data = state.config, state.data
    state.inputs = inputs = model_inputs(config, data, state.rd, state.device, state.progress)
    data_fp = state.manifest.step_fingerprint("data")
    model = build_model(
        config, data.kind, inputs.input_shape, data.n_classes, train_inputs=inputs.x_train
    )
    first = _first_inputs(inputs)
    check_model_fits(model, first, data.n_classes, state.device)
    state.model = model
    state.params = effective_params(config)
    example = first.to(state.device)  # the head is found by execution order
    state.full_dim = gradient_dim(model, state.params, example)  # bad params fail before training
    check_proj_dim(config.proj_dim, state.full_dim)
    recipe = model_recipe(config, data.kind)
    train_fp = fingerprint(
        data_fp,
        config.model,
        file_fingerprint(config.checkpoint),
        config.finetune,
        config.encoder,
        str(recipe),
        config.checkpoints,
        config.seed,
        *_image_model_parts(config),
    )
    previous = state.manifest.steps.get("train")
    trained = _obtain_weights(state, train_fp, recipe)
    test_acc = _test_accuracy(state)
    _record_model(state, recipe, test_acc)
    history = {"epochs": state.train_history} if state.train_history else {}
    record = state.mark(
        "train", train_fp, started, trained=trained, test_accuracy=test_acc, **history
    )
    if not trained and previous is not None and previous.extra.get("trained"):
        # reused: the step keeps the real training's time (and loss curve); this call's time is
        # kept apart
        record.extra.update(trained=True, reused=True, reuse_seconds=record.seconds)
        if previous.extra.get("epochs"):
            record.extra["epochs"] = previous.extra["epochs"]
        record.seconds, record.finished = previous.seconds, previous.finished
        state.save()
    if test_acc is not None:
        log.info(f"model: test accuracy {test_acc:.4f}")
    return record


def _first_inputs(inputs: Any) -> Any:
    """The first two training inputs as one batch (files decoded, transforms applied)."""
    from ogad_core.engine.datasets import first_inputs

    return first_inputs(inputs.x_train, inputs.y_train)


def _image_model_parts(config: ComputeConfig) -> list[str]:
    """Fingerprint parts of image models: a torchvision encoder's weights digest, --transform
    (none for other runs, whose fingerprints stay as they were)."""
    parts = []
    from ogad_core.engine.image_encoder import is_image_encoder, weights_digest

    if is_image_encoder(config.encoder):
        parts.append(weights_digest(str(config.encoder), config.weights))
    if config.transform:
        parts.append(f"transform:{config.transform}")
    return parts


def effective_params(config: ComputeConfig) -> str:
    """``auto`` -> ``last``, or the LoRA adapters when fine-tuning with LoRA."""
    if config.params != "auto":
        return config.params
    if config.finetune == "lora":
        from ogad_core.engine.lora import lora_param_patterns

        return ",".join(lora_param_patterns())
    return "last"


def _obtain_weights(state: RunState, train_fp: str, recipe: Any) -> bool:
    """Fill ``state.states`` (state_dicts, last = final) and save final.pt; True if trained."""
    import torch

    rd, model, n_ckpt = state.rd, state.model, state.config.checkpoints
    ckpt_paths = [rd.checkpoint_model_path(k) for k in range(n_ckpt)]
    trained = False
    if state.config.checkpoint:
        state.states = [{k: v.detach().clone() for k, v in model.state_dict().items()}]
    elif state.manifest.is_done("train", train_fp) and _load_checkpoints(ckpt_paths, model):
        state.states = [torch.load(p, map_location="cpu", weights_only=True) for p in ckpt_paths]
        model.load_state_dict(state.states[-1])
        log.info("model: reusing the trained model")
    else:
        state.states = _train(state, recipe)
        trained = True
    if not state.config.checkpoint:
        torch_save(state.states[-1], rd.final_model_path)
    model.to(state.device).eval()
    return trained


def _load_checkpoints(paths: list[Path], model: Any) -> bool:
    """Whether every saved checkpoint loads into ``model``; a damaged one is reported (and then
    the model is trained again, which gives the same weights: training is seeded)."""
    import torch

    for path in paths:
        if not path.is_file():
            return False
        try:
            with warnings.catch_warnings():  # torch warns about odd pickles before failing
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as err:  # unpickling, truncation, wrong shapes
            log.warning(
                f"{path.parent.name}/{path.name} is damaged ({one_line(err, 80)}); retraining"
            )
            return False
    return True


def _train(state: RunState, recipe: Any) -> list[dict[str, Any]]:
    from ogad_core.engine.train import train_model
    from ogad_core.issues.inputs import undecodable_rows, without_rows

    config, model, inputs = state.config, state.model, state.inputs
    log.info(f"model: training {type(model).__name__} for {recipe.epochs} epochs on {state.device}")
    hint = long_training_hint(config, state.data.kind, recipe.epochs)
    if hint:
        log.info(hint)
    # files that cannot be decoded (flagged corrupt by the data step) are not trained on
    x_train, y_train = without_rows(
        inputs.x_train, inputs.y_train, undecodable_rows(state.rd, len(inputs.y_train))
    )
    states = train_model(
        model,
        x_train,
        y_train,
        recipe=recipe,
        seed=config.seed,
        device=state.device,
        n_checkpoints=config.checkpoints,
        progress=state.progress,
        workers=config.workers,
        on_epoch=lambda epoch, loss, seconds: state.train_history.append(
            {"epoch": epoch, "loss": round(loss, 6), "seconds": round(seconds, 3)}
        ),
    )
    for k, weights in enumerate(states):
        torch_save(weights, state.rd.checkpoint_model_path(k))
    return states


def _test_accuracy(state: RunState) -> float | None:
    from ogad_core.engine.train import predict

    inputs, test = state.inputs, state.data.test
    if inputs.x_test is None or test is None:
        return None
    pred, *_ = predict(
        state.model,
        inputs.x_test,
        inputs.y_test,
        batch_size=state.config.batch_size,
        device=state.device,
        workers=state.config.workers,
    )
    return float((pred == test.labels).mean())


def _record_model(state: RunState, recipe: Any, test_acc: float | None) -> None:
    from ogad_core.engine.image_encoder import is_image_encoder
    from ogad_core.engine.models import state_fingerprint

    config = state.config
    if config.finetune:
        spec = "lora:" + (config.encoder or "default")
    else:
        image_encoder = is_image_encoder(config.encoder)
        spec = config.model or (config.encoder if image_encoder else None) or "builtin"
    state.manifest.model = {
        "spec": spec,
        "class": type(state.model).__name__,
        "checkpoint": config.checkpoint,
        "n_checkpoints": len(state.states),
        "recipe": str(recipe),
        "test_accuracy": test_acc,
        "device": str(state.device),
    }
    state.manifest.fingerprints["model_weights"] = state_fingerprint(state.model.state_dict())


# ---- step 3: predictions --------------------------------------------------------------------


def predict_step(state: RunState) -> StepRecord:
    """Predict every training sample with the final model -> samples.parquet."""
    from ogad_core.engine.train import predict

    started = time.perf_counter()
    inputs, data = state.inputs, state.data
    pred, conf, loss, _ = predict(
        state.model,
        inputs.x_train,
        inputs.y_train,
        batch_size=state.config.batch_size,
        device=state.device,
        workers=state.config.workers,
    )
    bad = np.flatnonzero(~np.isfinite(loss))
    if len(bad):
        raise ModelError(
            f"the model gives NaN or infinite outputs for {len(bad)} samples "
            f"(first sample_id {bad[0]}); check the weights and the data"
        )
    write_table_atomic(
        _samples_table(data, pred, conf, loss, inputs.truncated), state.rd.samples_path
    )
    train_fp = state.manifest.step_fingerprint("train")
    return state.mark(
        "predict", fingerprint(train_fp, state.manifest.fingerprints["model_weights"]), started
    )


def _samples_table(
    data: Any, pred: np.ndarray, conf: np.ndarray, loss: np.ndarray, truncated: Any
) -> pd.DataFrame:
    """samples.parquet: one row per training sample, sample_id order."""
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
    return samples

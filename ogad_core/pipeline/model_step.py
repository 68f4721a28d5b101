"""Steps 2 and 3, model and predictions: the run's model kind (:mod:`ogad_core.engine.kinds`:
built-in, text head, LoRA, last block or the user's) makes the inputs, builds the model, trains
it or loads the weights it brings; trained weights are reused under the step's fingerprint.
Then every sample is predicted -> samples.parquet."""

from __future__ import annotations

import io
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ogad_core._internal import log, one_line, write_bytes_atomic, write_table_atomic
from ogad_core.errors import ModelError
from ogad_core.options import ComputeConfig, check_proj_dim, fingerprint
from ogad_core.pipeline.state import ModelInputs, RunState
from ogad_core.run.manifest import StepRecord

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ogad_core.data.loaders import LoadedData
    from ogad_core.engine.kinds import ModelInput, ModelKind, StateDict
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.run.rundir import RunDir

#: training this many times the built-in recipe's epochs counts as long (memorisation risk):
#: 2.5 x the image recipe's 12 is the 30 epochs measured in docs/benchmarks.md
LONG_TRAINING_FACTOR = 2.5


def model_kind(config: ComputeConfig, kind: str) -> ModelKind:
    """The model kind of a run with ``config`` on data of ``kind`` (the first that matches)."""
    from ogad_core.engine.kinds import model_kind_for

    return model_kind_for(config, kind)


def model_inputs(
    config: ComputeConfig, data: LoadedData, rd: RunDir, device: Any, progress: bool
) -> ModelInputs:
    """What the run's model consumes for train and test, as its model kind makes them (by
    default the data kind's: arrays, files, encoder features; LoRA: token ids)."""
    return model_kind(config, data.kind).preprocess(config, data, rd, device, progress)


def model_recipe(config: ComputeConfig, kind: str) -> TrainRecipe:
    """The training recipe of the run's model kind, with ``--epochs`` / ``--lr`` /
    ``--weight-decay``."""
    recipe = model_kind(config, kind).recipe(config, kind)
    decay = recipe.weight_decay if config.weight_decay is None else config.weight_decay
    epochs, lr = config.epochs or recipe.epochs, config.lr or recipe.lr
    return replace(recipe, epochs=epochs, lr=lr, weight_decay=decay)


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
    train_inputs: ModelInput | None = None,
) -> nn.Module:
    """The model a run uses (untrained, or the user's checkpoint loaded), built by the run's
    model kind.

    ``train_inputs`` (N, E) text embeddings set the built-in text head's standardisation.
    """
    return model_kind(config, kind).build(config, kind, input_shape, n_classes, train_inputs)


def check_model_fits(model: nn.Module, x: torch.Tensor, n_classes: int, device: Any) -> None:
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


def torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` atomically; saved through memory so the bytes do not depend on a temp name."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())


# ---- step 2: the model ----------------------------------------------------------------------


def model_step(state: RunState) -> StepRecord:
    """Ask the run's model kind for the model's inputs and the model, then train it (through
    the kind), reuse the trained weights or take the weights the kind loads. Returns the
    ``train`` record."""
    from ogad_core.engine.gradients import gradient_dim

    started = time.perf_counter()
    config, data = state.config, state.data
    kind = model_kind(config, data.kind)
    state.inputs = inputs = kind.preprocess(config, data, state.rd, state.device, state.progress)
    model = kind.build(config, data.kind, inputs.input_shape, data.n_classes, inputs.x_train)
    first = _first_inputs(inputs)
    check_model_fits(model, first, data.n_classes, state.device)
    state.model = model
    state.params = effective_params(config, data.kind)
    example = first.to(state.device)  # the head is found by execution order
    state.full_dim = gradient_dim(model, state.params, example)  # bad params fail before training
    check_proj_dim(config.proj_dim, state.full_dim)
    recipe = model_recipe(config, data.kind)
    train_fp = train_fingerprint(state.manifest.step_fingerprint("data"), config, kind, recipe)
    previous = state.manifest.steps.get("train")
    trained = _obtain_weights(state, kind, train_fp, recipe)
    test_acc = _test_accuracy(state)
    _record_model(state, kind, recipe, test_acc)
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


def train_fingerprint(
    data_fp: str | None, config: ComputeConfig, kind: ModelKind, recipe: TrainRecipe
) -> str:
    """The ``train`` step's fingerprint: the data, the model kind's identity, the recipe, the
    checkpoints and the seed (the parts in the order runs were always fingerprinted in)."""
    identity = kind.identity(config)
    return fingerprint(
        data_fp, *identity.config, str(recipe), config.checkpoints, config.seed, *identity.weights
    )


def _first_inputs(inputs: ModelInputs) -> torch.Tensor:
    """The first two training inputs as one batch (files decoded, transforms applied)."""
    from ogad_core.engine.datasets import first_inputs

    return first_inputs(inputs.x_train, inputs.y_train)


def effective_params(config: ComputeConfig, kind: str) -> str:
    """``--params``, or with ``auto`` the gradient parameters of the run's model kind (the
    last layer; LoRA's adapters) on data of ``kind``."""
    if config.params != "auto":
        return config.params
    return model_kind(config, kind).gradient_params(config)


def _obtain_weights(state: RunState, kind: ModelKind, train_fp: str, recipe: TrainRecipe) -> bool:
    """Fill ``state.states`` (state_dicts, last = final) with the weights the model kind loads,
    the weights trained before under ``train_fp``, or by training through the kind; save
    final.pt when they are not the kind's. True if trained."""
    import torch

    rd, model, n_ckpt = state.rd, state.model, state.config.checkpoints
    ckpt_paths = [rd.checkpoint_model_path(k) for k in range(n_ckpt)]
    trained = False
    loaded = kind.load(state.config, model)
    if loaded is not None:
        state.states = loaded
    elif state.manifest.is_done("train", train_fp) and _load_checkpoints(ckpt_paths, model):
        state.states = [torch.load(p, map_location="cpu", weights_only=True) for p in ckpt_paths]
        model.load_state_dict(state.states[-1])
        log.info("model: reusing the trained model")
    else:
        state.states = _train(state, kind, recipe)
        trained = True
    if loaded is None:
        torch_save(state.states[-1], rd.final_model_path)
    model.to(state.device).eval()
    return trained


def _load_checkpoints(paths: list[Path], model: nn.Module) -> bool:
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


def _train(state: RunState, kind: ModelKind, recipe: TrainRecipe) -> list[StateDict]:
    """Train the model through its kind (without the files that cannot be decoded); save each
    checkpoint's weights."""
    from ogad_core.engine.kinds import TrainJob
    from ogad_core.issues.inputs import undecodable_rows, without_rows

    config, model = state.config, state.model
    log.info(f"model: training {type(model).__name__} for {recipe.epochs} epochs on {state.device}")
    hint = long_training_hint(config, state.data.kind, recipe.epochs)
    if hint:
        log.info(hint)
    # files that cannot be decoded (flagged corrupt by the data step) are not trained on
    inputs = state.inputs
    x_train, y_train = without_rows(
        inputs.x_train, inputs.y_train, undecodable_rows(state.rd, len(inputs.y_train))
    )
    job = TrainJob(
        seed=config.seed,
        device=state.device,
        n_checkpoints=config.checkpoints,
        progress=state.progress,
        workers=config.workers,
        on_epoch=lambda epoch, loss, seconds: state.train_history.append(
            {"epoch": epoch, "loss": round(loss, 6), "seconds": round(seconds, 3)}
        ),
    )
    states = kind.train(model, replace(inputs, x_train=x_train, y_train=y_train), recipe, job)
    if not states:
        raise ModelError(f"model kind {kind.name!r} trained no weights")
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


def _record_model(
    state: RunState, kind: ModelKind, recipe: TrainRecipe, test_acc: float | None
) -> None:
    from ogad_core.engine.models import state_fingerprint

    config = state.config
    state.manifest.model = {
        "spec": kind.spec(config),
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

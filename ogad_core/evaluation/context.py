"""The run an evaluation retrains: its data (checked against the run), inputs, recipe, device.

Torch is imported when a context is loaded, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ogad_core._internal import log
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.run.manifest import Manifest
from ogad_core.run.rundir import RunDir

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ogad_core.data import LoadedData
    from ogad_core.engine.kinds import ModelInput
    from ogad_core.engine.train import TrainRecipe
    from ogad_core.options import ComputeConfig

__all__ = [
    "NotTrainableError",
    "RunContext",
    "flipped_flags",
    "load_context",
    "new_model",
    "predict_proba",
    "require_test_split",
    "require_trainable",
    "train_subset",
]

NEEDS_TEST = "needs one (use a sample set: mnist5k, digits, moons, rotten-tomatoes)"


@dataclass
class RunContext:
    """A run re-loaded for retraining.

    Attributes:
        x_train: (N, ...) model inputs of the training samples (a tensor, or image files read a
            batch at a time); ``y_train`` (N,) given labels.
        x_test / y_test: the held-out split (None when the data has none).
        is_flipped: (N,) bool, the known noise.
        notes: remarks for the report (e.g. the recipe differs from the run's).
    """

    rd: RunDir
    manifest: Manifest
    config: ComputeConfig
    data: LoadedData
    is_flipped: np.ndarray
    x_train: ModelInput
    y_train: torch.Tensor
    x_test: ModelInput | None
    y_test: torch.Tensor | None
    recipe: TrainRecipe
    device: torch.device
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of training samples."""
        return int(self.is_flipped.shape[0])


def flipped_flags(samples: pd.DataFrame, where: Path) -> np.ndarray:
    """(N,) bool ``is_flipped`` of the samples table; ConfigError without known noise."""
    if "is_flipped" not in samples.columns:
        raise ConfigError(
            f"{where} has no known noise (is_flipped); compute it with --noise RATE to evaluate"
        )
    flags = samples["is_flipped"].to_numpy(dtype=bool)
    if not flags.any():
        raise ConfigError(f"{where}: no label was flipped; compute it with --noise RATE > 0")
    return flags


def require_test_split(rd: RunDir, manifest: Manifest) -> None:
    """ConfigError when the run has no held-out test split (retraining needs one)."""
    if not manifest.data.get("n_test"):
        spec = manifest.config.get("data")
        raise ConfigError(f"{rd.path} has no held-out test split ({spec}); retrain {NEEDS_TEST}")


def _checked_data(
    config: ComputeConfig, rd: RunDir, manifest: Manifest, flags: np.ndarray
) -> LoadedData:
    """The run's data loaded again, refused when it differs from what the run computed."""
    from ogad_core.options import fingerprint
    from ogad_core.pipeline import load_run_data

    data = load_run_data(config, rd)
    data_fp = fingerprint(data.fingerprint(), data.noise)
    if data_fp != manifest.step_fingerprint("data"):
        raise RunDirError(f"the data behind {config.data} changed since {rd.path} was computed")
    if data.is_flipped is None or not np.array_equal(data.is_flipped, flags):
        raise RunDirError(f"{rd.path}: samples.parquet's is_flipped does not match the data")
    return data


def load_context(rd: RunDir, manifest: Manifest, *, need_test: bool) -> RunContext:
    """Re-load the run's data (checked against its fingerprint), inputs and training recipe."""

    from ogad_core.engine.models import resolve_device
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import model_inputs, model_recipe

    config = ComputeConfig.from_dict(manifest.config)
    flags = flipped_flags(rd.read_samples(), rd.path)
    if need_test:
        require_test_split(rd, manifest)
    data = _checked_data(config, rd, manifest, flags)
    if need_test and data.test is None:
        raise ConfigError(f"{config.data} has no held-out test split; retrain {NEEDS_TEST}")
    device = resolve_device(config.device)
    inputs = model_inputs(config, data, rd, device, False)
    recipe = model_recipe(config, data.kind)
    recorded = manifest.model.get("recipe")
    notes = []
    if recorded and recorded != str(recipe):
        notes.append(f"the run was trained with {recorded}; retraining uses {recipe}")
        log.info(f"evaluate: note: {notes[-1]}")
    return RunContext(
        rd=rd,
        manifest=manifest,
        config=config,
        data=data,
        is_flipped=flags,
        x_train=inputs.x_train,
        y_train=inputs.y_train,
        x_test=inputs.x_test,
        y_test=inputs.y_test,
        recipe=recipe,
        device=device,
        notes=notes,
    )


class NotTrainableError(ConfigError):
    """The run's model came from a user checkpoint: there is no training recipe to repeat."""


def require_trainable(ctx: RunContext, what: str) -> None:
    """NotTrainableError when the run's model came from a checkpoint."""
    if ctx.config.checkpoint:
        raise NotTrainableError(
            f"{what} retrains the model from scratch, but this run's model came from "
            f"`checkpoint` {ctx.config.checkpoint} (no training recipe to repeat)"
        )


def new_model(ctx: RunContext, seed: int) -> nn.Module:
    """A freshly initialised model of the run (torch seeded as ``ogad compute`` seeds it)."""
    import torch

    from ogad_core.pipeline import build_model

    torch.manual_seed(seed)
    config = ctx.config if seed == ctx.config.seed else replace(ctx.config, seed=seed)
    shape = tuple(ctx.x_train.shape[1:])
    model: nn.Module = build_model(
        config, ctx.data.kind, shape, ctx.data.n_classes, train_inputs=ctx.x_train
    )
    return model


def train_subset(ctx: RunContext, idx: np.ndarray, labels: np.ndarray, seed: int) -> nn.Module:
    """Train a fresh model on rows ``idx`` (M,) with ``labels[idx]``, as the run's model kind
    trains (``ModelKind.train``); returns the final model. Streamed inputs (image files) stay
    on disk: only the rows' batches are decoded."""
    import torch

    from ogad_core.engine.datasets import take_rows
    from ogad_core.engine.kinds import ModelInputs, TrainJob
    from ogad_core.pipeline.model_step import model_kind

    model = new_model(ctx, seed)
    x = ctx.x_train
    rows = x[torch.as_tensor(idx)] if isinstance(x, torch.Tensor) else take_rows(x, labels, idx)
    inputs = ModelInputs(rows, torch.as_tensor(labels[idx]))
    job = TrainJob(seed=seed, device=ctx.device, workers=ctx.config.workers)
    model_kind(ctx.config, ctx.data.kind).train(model, inputs, ctx.recipe, job)
    return model


def predict_proba(ctx: RunContext, model: nn.Module, idx: np.ndarray) -> np.ndarray:
    """(M, C) float64 softmax probabilities of the training rows ``idx`` (M,) in eval mode,
    streamed batch by batch."""
    import torch

    from ogad_core.engine.datasets import iterate, row_batches, take_rows

    batches = take_rows(ctx.x_train, np.zeros(ctx.n, dtype=np.int64), idx)
    model.to(ctx.device).eval()
    out = np.empty((len(batches), ctx.data.n_classes), dtype=np.float64)
    groups = row_batches(len(batches), ctx.config.batch_size)
    with torch.no_grad():
        for rows, x, _ in iterate(batches, groups, device=ctx.device, workers=ctx.config.workers):
            out[rows] = torch.softmax(model(x).float(), dim=1).double().cpu().numpy()
    return out

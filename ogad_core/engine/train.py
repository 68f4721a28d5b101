"""Training of the built-in (or an untrained user) model: seeded, deterministic on CPU.

Inputs stream batch by batch (:mod:`ogad_core.engine.datasets`): in-memory tensors are sliced,
image files decoded by DataLoader workers, so memory does not grow with N.

Keeps ``n_checkpoints`` snapshots spread evenly over training (TracIn-style); the last one is
the final model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ogad_core.engine.datasets import Transform, as_batches, iterate, row_batches


@dataclass(frozen=True)
class TrainRecipe:
    """Optimiser settings; validated on creation."""

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128

    def __post_init__(self) -> None:
        from ogad_core.errors import ConfigError

        if self.epochs < 1:
            raise ConfigError(f"`epochs` must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ConfigError(f"`lr` must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1, got {self.batch_size}")


def default_recipe(kind: str) -> TrainRecipe:
    """The built-in recipe for a data kind (image CNN, tabular MLP, text head), as its
    :class:`~ogad_core.engine.kinds.InputKind` gives it."""
    from ogad_core.engine.kinds import input_kind

    return input_kind(kind).recipe()


def checkpoint_epochs(epochs: int, n_checkpoints: int) -> list[int]:
    """Epochs (1-based) after which a checkpoint is kept: ``n`` spread evenly, last = final."""
    n = max(1, min(n_checkpoints, epochs))
    return sorted({int(round(epochs * (k + 1) / n)) for k in range(n)})


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def train_model(
    model: nn.Module,
    inputs: Any,
    labels: Any = None,
    *,
    recipe: TrainRecipe,
    seed: int,
    device: torch.device,
    n_checkpoints: int = 1,
    progress: bool = True,
    workers: int | None = None,
    transform: Transform | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Train ``model`` in place with Adam + cross-entropy, streaming batches.
    ``on_epoch(epoch, mean training loss, seconds)`` is called after each epoch.

    Args:
        inputs: (N, ...) float tensor or array (or (N, L) token ids) with ``labels`` (N,) int64;
            :class:`~ogad_core.data.images.ImageFiles` with ``labels`` (decoded per batch by
            ``workers`` processes, through ``transform`` when given); or a dataset of
            ``(input, label)`` pairs (see :func:`~ogad_core.engine.datasets.as_batches`).
    Returns:
        the state_dicts (on CPU) of the kept checkpoints, in training order; the last is final.
    """
    seed_everything(seed)
    batches = as_batches(inputs, labels, transform=transform)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    n = len(batches)
    keep_at = set(checkpoint_epochs(recipe.epochs, n_checkpoints))
    states: list[dict[str, torch.Tensor]] = []
    bar = tqdm(range(1, recipe.epochs + 1), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        epoch_started = time.perf_counter()
        order = torch.randperm(n, generator=gen).numpy()
        total = torch.zeros((), device=device)
        for rows, x, y in iterate(
            batches, row_batches(order, recipe.batch_size), device=device, workers=workers
        ):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.detach() * len(rows)
        bar.set_postfix(loss=f"{float(total) / n:.4f}")
        if on_epoch is not None:
            on_epoch(epoch, float(total) / n, time.perf_counter() - epoch_started)
        if epoch in keep_at:
            states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    model.eval()
    return states


@torch.no_grad()
def predict(
    model: nn.Module,
    inputs: Any,
    labels: Any = None,
    *,
    batch_size: int,
    device: torch.device,
    workers: int | None = None,
    transform: Transform | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One streamed forward pass in eval mode (``inputs`` as in :func:`train_model`).

    Returns:
        pred (N,) int64, confidence (N,) prob of pred, loss (N,) CE with the given label,
        prob_given (N,) prob of the given label — all float64 except pred.
    """
    batches = as_batches(inputs, labels, transform=transform)
    model.to(device).eval()
    n = len(batches)
    pred = np.empty(n, dtype=np.int64)
    out = np.empty((3, n), dtype=np.float64)  # confidence, loss, prob_given
    for rows, x, y in iterate(batches, row_batches(n, batch_size), device=device, workers=workers):
        logp = torch.log_softmax(model(x).float(), dim=1)
        lp_given = logp.gather(1, y[:, None])[:, 0]
        top, arg = logp.max(dim=1)
        stats = torch.stack([top.exp(), -lp_given, lp_given.exp()]).double().cpu().numpy()
        pred[rows] = arg.cpu().numpy()
        out[:, rows] = stats
    return pred, out[0], out[1], out[2]


def accuracy(
    model: nn.Module,
    inputs: Any,
    labels: Any,
    *,
    batch_size: int,
    device: torch.device,
    workers: int | None = None,
) -> float:
    """Fraction of ``labels`` the model predicts."""
    pred, *_ = predict(model, inputs, labels, batch_size=batch_size, device=device, workers=workers)
    return float((pred == np.asarray(labels)).mean())


def clone_with_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` holding ``state``."""
    other = copy.deepcopy(model)
    other.load_state_dict(state)
    return other.eval()

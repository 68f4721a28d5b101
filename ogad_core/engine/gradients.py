"""Per-sample gradients of the cross-entropy with the GIVEN label.

Three paths, one layout (parameters in ``named_parameters`` order, each flattened):

- ``params="last"``: weight and bias of the model's last ``nn.Linear`` in closed form from one
  forward pass: dL/dW = (softmax(z) - onehot(y)) h^T, dL/db = softmax(z) - onehot(y).
- ``params="all"`` or names: ``torch.func.vmap(grad(...))`` over a batch.
- :func:`per_sample_gradients_loop`: one backward per sample; the reference for tests.

With ``proj_dim`` each batch is projected by a seeded :class:`RandomProjector` before it is
stored, so the full (N, D) matrix is never held.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ogad_core.engine.heads import choose_method, find_head, first_batch
from ogad_core.engine.models import resolve_device
from ogad_core.engine.projection import RandomProjector
from ogad_core.errors import ConfigError, ModelError
from ogad_core.run.store import GradientStore

ParamSpec = str | Sequence[str]


def select_params(
    model: nn.Module, params: ParamSpec, example: torch.Tensor | None = None
) -> list[tuple[str, nn.Parameter]]:
    """The parameters a gradient is taken with respect to, in ``named_parameters`` order.

    Args:
        params: ``"last"`` (last nn.Linear's weight and bias), ``"all"`` (every parameter that
            requires grad), or names: comma-separated string or list; each entry is an exact
            parameter name, a dotted prefix (``fc`` selects ``fc.weight``, ``fc.bias``), or a
            glob (``*lora_*``).
        example: a batch of inputs; with it ``"last"`` is the layer whose output the model
            returns (execution order, :mod:`ogad_core.engine.heads`), else the last defined.
    """
    named = list(model.named_parameters())
    if isinstance(params, str) and params == "last":
        _, head = find_head(model, example)
        head_ids = {id(p) for p in head.parameters(recurse=False)}
        chosen = [(n, p) for n, p in named if id(p) in head_ids]
    elif isinstance(params, str) and params == "all":
        chosen = [(n, p) for n, p in named if p.requires_grad]
    else:
        entries = params.split(",") if isinstance(params, str) else list(params)
        entries = [e.strip() for e in entries if e.strip()]
        if not entries:
            raise ConfigError("--params is empty; use last, all or parameter names")
        chosen = []
        for name, p in named:
            if any(_matches(name, e) for e in entries):
                chosen.append((name, p))
        unmatched = [e for e in entries if not any(_matches(n, e) for n, _ in named)]
        if unmatched:
            sample = ", ".join(n for n, _ in named[:6])
            raise ConfigError(
                f"--params: no parameter matches {', '.join(unmatched)} (names look like: "
                f"{sample}{', ...' if len(named) > 6 else ''})"
            )
    if not chosen:
        raise ConfigError(f"--params {params!r} selects no parameter")
    return chosen


def _matches(name: str, entry: str) -> bool:
    if any(c in entry for c in "*?["):
        return fnmatch.fnmatchcase(name, entry)
    return name == entry or name.startswith(entry + ".")


def gradient_dim(model: nn.Module, params: ParamSpec, example: torch.Tensor | None = None) -> int:
    """D, the length of one per-sample gradient for ``params`` (``example``: a batch of
    inputs, to find the head by execution order)."""
    return sum(p.numel() for _, p in select_params(model, params, example))


# ---- the three paths -----------------------------------------------------------------------


def _last_layer_batch(
    model: nn.Module, head: nn.Linear, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Closed-form last-layer gradients for a batch: (B, C * H [+ C]) float32.

    Falls back to one batched backward to the head's output when the model transforms the
    head's output further (still exact: sample i's loss depends only on its own row).
    """
    captured: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        captured["h"], captured["z"] = inp[0], out

    handle = head.register_forward_hook(hook)
    try:
        with torch.no_grad():
            out = model(x)
        if out is captured["z"] and out.dim() == 2:
            dz = torch.softmax(out.float(), dim=1)
            dz[torch.arange(y.shape[0], device=y.device), y] -= 1.0
            h = captured["h"].float()
            gw = (dz[:, :, None] * h[:, None, :]).reshape(y.shape[0], -1)
        else:
            with torch.enable_grad():
                out = model(x)
                z = captured["z"]
                loss = nn.functional.cross_entropy(out.float(), y, reduction="sum")
                (dz,) = torch.autograd.grad(loss, z)
            h = captured["h"].detach().float()
            dz = dz.float()
            gw = torch.einsum("b...c,b...h->bch", dz, h).reshape(y.shape[0], -1)
            dz = dz.reshape(dz.shape[0], -1, dz.shape[-1]).sum(dim=1)
    finally:
        handle.remove()
    if head.bias is not None:
        return torch.cat([gw, dz], dim=1)
    return gw


class _VmapGradients:
    """``torch.func`` per-sample gradients of the selected parameters for one batch."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        from torch.func import functional_call, grad, vmap

        self.model = model
        self.names = names
        state = dict(model.named_parameters())
        self.fixed = {n: p.detach() for n, p in state.items() if n not in names}
        self.fixed.update(dict(model.named_buffers()))

        def loss_fn(selected: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
            out = functional_call(model, {**self.fixed, **selected}, (x[None],))
            return nn.functional.cross_entropy(out.float(), y[None])

        self._fn = vmap(grad(loss_fn), in_dims=(None, 0, 0))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        selected = {n: p.detach() for n, p in self.model.named_parameters() if n in self.names}
        grads = self._fn(selected, x, y)
        return [grads[n].reshape(y.shape[0], -1).float() for n in self.names]


def loop_batch(
    model: nn.Module, params: list[tuple[str, nn.Parameter]], x: torch.Tensor, y: torch.Tensor
) -> list[torch.Tensor]:
    """One backward per sample; returns per-parameter (B, numel) blocks."""
    tensors = [p for _, p in params]
    rows: list[list[torch.Tensor]] = [[] for _ in tensors]
    for i in range(y.shape[0]):
        with torch.enable_grad():
            loss = nn.functional.cross_entropy(model(x[i : i + 1]).float(), y[i : i + 1])
            grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for k, (g, p) in enumerate(zip(grads, tensors, strict=True)):
            rows[k].append(torch.zeros(p.numel()) if g is None else g.reshape(-1).float())
    return [torch.stack(r) for r in rows]


def per_sample_gradients_loop(
    model: nn.Module, dataset: Any, params: ParamSpec = "last", *, device: str = "cpu"
) -> np.ndarray:
    """Reference: one forward and backward per sample. Returns (N, D) float32."""
    dev = resolve_device(device)
    model.to(dev).eval()
    chosen = select_params(model, params, first_batch(dataset)[0].to(dev))
    out = []
    for x, y in DataLoader(dataset, batch_size=1, shuffle=False):
        blocks = loop_batch(model, chosen, x.to(dev), y.to(dev))
        out.append(torch.cat(blocks, dim=1).cpu())
    return torch.cat(out).numpy().astype(np.float32)


# ---- the public entry point ----------------------------------------------------------------


def compute_gradients(
    model: nn.Module,
    dataset: Any,
    params: ParamSpec = "last",
    batch_size: int = 256,
    device: str = "cpu",
    *,
    proj_dim: int | None = None,
    seed: int = 0,
    out: GradientStore | None = None,
    method: str = "auto",
    progress: bool = True,
) -> np.ndarray:
    """Per-sample gradients of the cross-entropy with each sample's given label.

    Args:
        model: any classifier ``(B, ...) -> logits (B, C)``; put in eval mode.
        dataset: a map-style dataset (or sequence) of ``(input, label)`` pairs.
        params: ``"last"``, ``"all"`` or parameter names (see :func:`select_params`).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        proj_dim: project each gradient to this many dimensions (seeded JL projection).
        out: a :class:`GradientStore` to stream rows into; rows already done are skipped.
        method: ``auto`` (closed form for last, vmap otherwise, loop if vmap fails),
            ``closed``, ``vmap`` or ``loop``.
    Returns:
        (N, D) float32 — D = proj_dim when projecting — an in-memory array, or the store's
        read-only memmap when ``out`` is given.
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    if method not in ("auto", "closed", "vmap", "loop"):
        raise ConfigError(f"unknown gradient method {method!r}")
    dev = resolve_device(device)
    model.to(dev).eval()
    n = len(dataset)
    if n == 0:
        raise ConfigError("the dataset is empty")
    x0, y0 = (t.to(dev) for t in first_batch(dataset))
    chosen = select_params(model, params, x0)
    names = [n for n, _ in chosen]
    in_dim = sum(p.numel() for _, p in chosen)
    projector = (
        RandomProjector(in_dim=in_dim, proj_dim=proj_dim, seed=seed, device=dev)
        if proj_dim
        else None
    )
    out_dim = proj_dim or in_dim
    if out is not None and (out.n_rows, out.n_cols) != (n, out_dim):
        raise ConfigError(f"store holds ({out.n_rows}, {out.n_cols}); need ({n}, {out_dim})")

    mode, head = choose_method(model, x0, y0, names, method)
    vmapper = _VmapGradients(model, names) if mode == "vmap" else None

    pending = out.pending() if out is not None else np.arange(n)
    batches = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
    result = None if out is not None else np.empty((n, out_dim), dtype=np.float32)
    loader = DataLoader(dataset, batch_sampler=[b.tolist() for b in batches])
    label = params if isinstance(params, str) else "named"
    bar = tqdm(
        total=len(pending),
        desc=f"gradients ({label})",
        unit="sample",
        disable=not progress or len(pending) == 0,
    )
    for rows, (x, y) in zip(batches, loader, strict=True):
        x = x.to(dev, non_blocking=True)
        y = torch.as_tensor(y).to(dev, non_blocking=True).long()
        if mode == "closed":
            blocks = [_last_layer_batch(model, head, x, y)]
        elif mode == "vmap":
            try:
                blocks = vmapper(x, y)
            except Exception as err:  # vmap cannot trace every model; the loop always works
                if method == "vmap":
                    raise ModelError(f"torch.func vmap failed on this model: {err}") from None
                warnings.warn(
                    f"vmap per-sample gradients failed ({type(err).__name__}: "
                    f"{str(err).splitlines()[0][:120]}); using the per-sample loop",
                    stacklevel=2,
                )
                mode = "loop"
                blocks = loop_batch(model, chosen, x, y)
        else:
            blocks = loop_batch(model, chosen, x, y)
        g = _finish(blocks, projector)
        if out is not None:
            out.write(rows, g)
        else:
            result[rows] = g
        bar.update(len(rows))
    bar.close()
    return out.array() if out is not None else result


def _finish(blocks: list[torch.Tensor], projector: RandomProjector | None) -> np.ndarray:
    """Concatenate per-parameter (B, d_i) blocks, or project them slice by slice."""
    if projector is None:
        g = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)
    else:
        g, offset = None, 0
        for b in blocks:
            part = projector.project_slice(b, offset)
            g = part if g is None else g + part
            offset += b.shape[1]
    return g.detach().cpu().numpy().astype(np.float32, copy=False)

"""Per-sample gradients of the cross-entropy with the GIVEN label.

Three paths, one layout (parameters in ``named_parameters`` order, each flattened):

- ``params="last"``: weight and bias of the model's last ``nn.Linear`` in closed form from one
  forward pass: dL/dW = (softmax(z) - onehot(y)) h^T, dL/db = softmax(z) - onehot(y).
- ``params="all"`` or names: ``torch.func.vmap(grad(...))`` over a batch.
- :func:`per_sample_gradients_loop`: one backward per sample; the reference for tests.

With ``proj_dim`` each batch is projected by a seeded :class:`RandomProjector` before it is
stored, so the full (N, D) matrix is never held.

Batches stream from :mod:`ogad_core.engine.datasets` (tensors sliced, files decoded by worker
processes, the next batch copied to the GPU while the current one computes); gradients stay on
the device until their batch is written, which on CUDA happens one batch later so the copy back
overlaps the next batch.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ogad_core._internal import log
from ogad_core.engine.datasets import BatchDataset, as_batches, iterate, row_batches
from ogad_core.engine.executors import Executor, Write, with_total
from ogad_core.engine.heads import choose_method, find_head, first_batch
from ogad_core.engine.models import resolve_device
from ogad_core.engine.projection import RandomProjector
from ogad_core.errors import ConfigError, ModelError
from ogad_core.options import PRECISIONS
from ogad_core.run.store import ArrayRows, GradientStore

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
            raise ConfigError("`params` is empty; use last, all or parameter names")
        chosen = []
        for name, p in named:
            if any(_matches(name, e) for e in entries):
                chosen.append((name, p))
        unmatched = [e for e in entries if not any(_matches(n, e) for n, _ in named)]
        if unmatched:
            sample = ", ".join(n for n, _ in named[:6])
            raise ConfigError(
                f"`params`: no parameter matches {', '.join(unmatched)} (names look like: "
                f"{sample}{', ...' if len(named) > 6 else ''})"
            )
    if not chosen:
        raise ConfigError(f"`params` {params!r} selects no parameter")
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


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The forward pass's autocast context for ``precision`` (fp32: none)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def on_cpu(model: nn.Module) -> nn.Module:
    """``model`` itself when its parameters are on the CPU, else a CPU copy (to ship)."""
    if all(p.device.type == "cpu" for p in model.parameters()):
        return model
    return copy.deepcopy(model).cpu()


class _RowSink:
    """Hands (B, D) device tensors to ``write`` one batch late on CUDA, so the device-to-host
    copy and the write overlap the next batch's compute."""

    def __init__(self, write: Write) -> None:
        self.write = write
        self.waiting: tuple[np.ndarray, torch.Tensor, Any] | None = None

    def put(self, rows: np.ndarray, g: torch.Tensor) -> None:
        if g.device.type != "cuda":
            self._write(rows, g.detach().float())
            return
        host = torch.empty(g.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(g.detach(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self.flush()
        self.waiting = (rows, host, event)

    def flush(self) -> None:
        if self.waiting is not None:
            rows, host, event = self.waiting
            event.synchronize()
            self._write(rows, host)
            self.waiting = None

    def _write(self, rows: np.ndarray, g: torch.Tensor) -> None:
        self.write(rows, g.cpu().numpy().astype(np.float32, copy=False))


@dataclass
class GradientTask:
    """Per-sample gradients of a model on a batch dataset, as a row task
    (:mod:`ogad_core.engine.executors`): ``run(rows, write)`` writes (B, D) float32 per batch."""

    model: nn.Module
    dataset: BatchDataset
    params: ParamSpec = "last"
    batch_size: int = 256
    device: str = "cpu"
    proj_dim: int | None = None
    seed: int = 0
    method: str = "auto"
    workers: int | None = None
    precision: str = "fp32"

    def order(self, pending: np.ndarray) -> np.ndarray:
        return pending

    def for_worker(self, device: str) -> GradientTask:
        return replace(self, model=on_cpu(self.model), device=device, workers=0)

    def n_cols(self) -> int:
        """D: the gradient's length, or ``proj_dim``."""
        dev = resolve_device(self.device)
        self.model.to(dev).eval()
        x0, _ = self._example(dev)
        chosen = select_params(self.model, self.params, x0)
        return self.proj_dim or sum(p.numel() for _, p in chosen)

    def _example(self, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The first few samples, on ``dev`` (the head is found by execution order)."""
        x0, y0 = self.dataset[np.arange(min(4, len(self.dataset)))]
        return x0.to(dev), y0.to(dev)

    def run(self, rows: np.ndarray, write: Write) -> None:
        """Gradients of ``rows``, batch by batch (CUDA: written one batch late)."""
        dev = resolve_device(self.device)
        model = self.model.to(dev).eval()
        x0, y0 = self._example(dev)
        chosen = select_params(model, self.params, x0)
        names = [n for n, _ in chosen]
        in_dim = sum(p.numel() for _, p in chosen)
        projector = (
            RandomProjector(in_dim=in_dim, proj_dim=self.proj_dim, seed=self.seed, device=dev)
            if self.proj_dim
            else None
        )
        mode, head = choose_method(model, x0, y0, names, self.method)
        vmapper = _VmapGradients(model, names) if mode == "vmap" else None
        sink = _RowSink(write)
        groups = row_batches(rows, self.batch_size)
        for batch_rows, x, y in iterate(self.dataset, groups, device=dev, workers=self.workers):
            with autocast(dev, self.precision):
                if mode == "closed":
                    assert head is not None
                    blocks = [_last_layer_batch(model, head, x, y)]
                elif mode == "vmap":
                    assert vmapper is not None
                    strict = self.method == "vmap"
                    blocks, mode = _vmap_or_loop(vmapper, model, chosen, x, y, strict=strict)
                else:
                    blocks = loop_batch(model, chosen, x, y)
            sink.put(batch_rows, _finish(blocks, projector))
        sink.flush()


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
    workers: int | None = None,
    precision: str = "fp32",
    executor: Executor | None = None,
) -> np.ndarray:
    """Per-sample gradients of the cross-entropy with each sample's given label.

    Args:
        model: any classifier ``(B, ...) -> logits (B, C)``; put in eval mode.
        dataset: a map-style dataset (or sequence) of ``(input, label)`` pairs; a
            ``TensorDataset`` is sliced by batch, and a
            :class:`~ogad_core.engine.datasets.BatchDataset` (e.g. image files) streams.
        params: ``"last"``, ``"all"`` or parameter names (see :func:`select_params`).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        proj_dim: project each gradient to this many dimensions (seeded sparse JL projection,
            see :mod:`ogad_core.engine.projection`).
        out: a :class:`GradientStore` to stream rows into; rows already done are skipped.
        method: ``auto`` (closed form for last, vmap otherwise, loop if vmap fails),
            ``closed``, ``vmap`` or ``loop``.
        workers: data-loading processes for datasets that decode files (default: CPU count).
        precision: ``fp32``, ``bf16`` or ``fp16``: autocast for the forward pass; gradients
            are always computed from float32 logits and stored as float32.
        executor: where the rows are computed (:mod:`ogad_core.engine.executors`): this
            process (default) or a Ray cluster (``RayExecutor``); the same rows either way.
    Returns:
        (N, D) float32 — D = proj_dim when projecting — an in-memory array, or the store's
        read-only memmap when ``out`` is given.
    """
    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1, got {batch_size}")
    if method not in ("auto", "closed", "vmap", "loop"):
        raise ConfigError(f"unknown gradient method {method!r}")
    autocast(resolve_device(device), precision)  # validates precision before any work
    batches = as_batches(dataset)
    n = len(batches)
    if n == 0:
        raise ConfigError("the dataset is empty")
    task = GradientTask(
        model, batches, params, batch_size, device, proj_dim, seed, method, workers, precision
    )
    out_dim = task.n_cols()
    if out is not None and (out.n_rows, out.n_cols) != (n, out_dim):
        raise ConfigError(f"store holds ({out.n_rows}, {out.n_cols}); need ({n}, {out_dim})")
    sink = out if out is not None else ArrayRows(n, out_dim)
    label = params if isinstance(params, str) else "named"
    with_total(executor, n, progress).map_rows(task, sink, desc=f"gradients ({label})")
    return sink.array()


def _vmap_or_loop(
    vmapper: _VmapGradients,
    model: nn.Module,
    chosen: list[tuple[str, nn.Parameter]],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    strict: bool,
) -> tuple[list[torch.Tensor], str]:
    """vmap per-sample gradients; falls back to the per-sample loop (mode ``loop``) unless
    ``strict``. Returns (blocks, the mode for later batches)."""
    try:
        return vmapper(x, y), "vmap"
    except Exception as err:  # vmap cannot trace every model; the loop always works
        if strict:
            raise ModelError(f"torch.func vmap failed on this model: {err}") from None
        log.warning(
            "vmap per-sample gradients failed (%s: %s); using the per-sample loop",
            type(err).__name__,
            str(err).splitlines()[0][:120] if str(err) else "",
        )
        return loop_batch(model, chosen, x, y), "loop"


def _finish(blocks: list[torch.Tensor], projector: RandomProjector | None) -> torch.Tensor:
    """Concatenate per-parameter (B, d_i) blocks, or project them slice by slice: (B, D or k)
    float32, still on the device."""
    if projector is None:
        whole = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)
        return whole.float()
    g: torch.Tensor | None = None
    offset = 0
    for b in blocks:
        part = projector.project_slice(b, offset)
        g = part if g is None else g + part
        offset += b.shape[1]
    assert g is not None
    return g

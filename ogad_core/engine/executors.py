"""One execution API for the heavy passes (encoder features, gradients): an executor maps a
:class:`RowTask` over the pending rows of a row store.

- A :class:`RowTask` computes rows of an (N, D) float32 matrix: ``run(rows, write)`` streams its
  own batches and calls ``write(rows (B,), values (B, D))`` for each. The image encoder
  (:mod:`ogad_core.engine.image_encoder`), the text encoder and the gradient pass
  (:mod:`ogad_core.engine.gradients`) are such tasks.
- A sink is the resumable row store (:func:`ogad_core.run.store.row_store`: ``pending()`` and
  ``write``); only the process that calls the executor writes it.
- :class:`LocalExecutor` runs the task in this process on every pending row (DataLoader workers
  decode files); :class:`~ogad_core.engine.ray_engine.RayExecutor` cuts the pending rows into
  shards of whole batches and runs them as Ray tasks, writing each shard as it comes back.

:func:`executor_for` picks one from ``--engine``; Ray is imported only by the Ray executor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from ogad_core.options import ComputeConfig

#: ``write(rows (B,) int64, values (B, D) float32)``
Write = Callable[[np.ndarray, np.ndarray], None]


@runtime_checkable
class RowTask(Protocol):
    """Computes rows of an (N, D) float32 matrix, batch by batch (picklable for Ray)."""

    #: rows per batch; Ray shards are whole batches, so every batch is the local engine's
    batch_size: int

    def order(self, pending: np.ndarray) -> np.ndarray:
        """The pending rows in the order they are computed (e.g. longest text first)."""
        ...

    def run(self, rows: np.ndarray, write: Write) -> None:
        """Compute ``rows`` (in this order), calling ``write`` once per batch."""
        ...

    def for_worker(self, device: str) -> RowTask:
        """A copy to ship to a remote worker: on ``device``, decoding in the worker itself."""
        ...


class RowSink(Protocol):
    """Where rows go: a GradientStore or its in-memory twin (``ogad_core.run.store``)."""

    def pending(self) -> np.ndarray: ...

    def write(self, rows: np.ndarray, values: np.ndarray) -> None: ...


@dataclass
class ExecutorRun:
    """What one ``map_rows`` call did (for logs, the manifest, tests and benchmarks)."""

    n_rows: int = 0
    seconds: float = 0.0
    n_shards: int = 0
    n_workers: int = 1
    #: the Ray node (hex id) that computed each shard, in the order they were written
    shard_nodes: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.n_rows / self.seconds if self.seconds > 0 else 0.0


class Executor(Protocol):
    """Maps a task over a sink's pending rows."""

    def map_rows(self, task: RowTask, sink: RowSink, *, desc: str = "rows") -> ExecutorRun:
        """Compute every pending row of ``sink`` with ``task`` and write it into ``sink``."""
        ...


class Progress:
    """A tqdm bar on stderr over ``total`` rows, ``done`` of them already finished."""

    def __init__(self, total: int, done: int, desc: str, enabled: bool) -> None:
        self.bar = tqdm(
            total=total, initial=done, desc=desc, unit="row", disable=not enabled or total == done
        )

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


@dataclass
class LocalExecutor:
    """Runs a task in this process on all pending rows, writing each batch as it is done."""

    progress: bool = True
    #: total rows of the matrix, for the bar (default: the pending rows)
    total: int | None = None

    def map_rows(self, task: RowTask, sink: RowSink, *, desc: str = "rows") -> ExecutorRun:
        rows = task.order(np.asarray(sink.pending(), dtype=np.int64))
        total = self.total if self.total is not None else len(rows)
        bar = Progress(total, total - len(rows), desc, self.progress)
        started = time.perf_counter()

        def write(done: np.ndarray, values: np.ndarray) -> None:
            sink.write(done, values)
            bar.update(len(done))

        try:
            if len(rows):
                task.run(rows, write)
        finally:
            bar.close()
        return ExecutorRun(n_rows=len(rows), seconds=time.perf_counter() - started, n_shards=1)


def executor_for(config: ComputeConfig, *, progress: bool = True) -> Executor:
    """The executor of ``--engine``: local, or Ray (at ``--ray-address``, else a local
    cluster)."""
    if config.engine == "ray":
        from ogad_core.engine.ray_engine import RayExecutor

        return RayExecutor(address=config.ray_address, progress=progress)
    return LocalExecutor(progress=progress)


def engine_session(config: ComputeConfig) -> AbstractContextManager[object]:
    """One Ray connection for every pass of a compute with ``--engine ray`` (the encoder step
    and each checkpoint's gradients share it; a cluster started here is shut down at the end);
    nothing for the local engine."""
    if config.engine != "ray":
        return nullcontext()
    from ogad_core.engine.ray_engine import ray_session

    return ray_session(config.ray_address)


def with_total(executor: Executor | None, total: int, progress: bool) -> Executor:
    """``executor`` (a LocalExecutor by default) with its bar sized to ``total`` rows."""
    if executor is None:
        return LocalExecutor(progress=progress, total=total)
    if isinstance(executor, LocalExecutor):
        return LocalExecutor(progress=executor.progress and progress, total=total)
    return executor

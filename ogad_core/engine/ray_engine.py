"""The Ray executor (``ogad compute --engine ray``): the encoder pass, the text encoder and the
gradient pass on a Ray cluster, through the one execution API of
:mod:`ogad_core.engine.executors`.

How it runs:

- The driver (the ``ogad compute`` process) cuts the rows not yet done in the row store into
  shards of whole batches (so every worker computes the very batches the local engine would).
- The task (model and data) goes once into Ray's object store; each shard is a Ray task that
  runs the task's own ``run`` on its rows (the task is unpickled once per worker process).
- The driver alone writes every returned shard into the store (positioned writes + done mask).
  Workers need the data only when it is read lazily (image paths), at the same path everywhere.
- Lost workers and lost nodes are Ray's business: each shard is a task with Ray's own
  ``max_retries``, so a shard whose worker (or node) died is run again on another one, and the
  shards already written stay done. A killed driver resumes from the done mask, like the local
  engine. Tasks rather than an actor pool: a restarted actor waits for a slot on a node that may
  be gone for good, while a retried task takes any free slot of the nodes still there.

Ray is an optional extra (``pip install 'ogad[ray]'``) imported only here, only when called.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import ogad_core
from ogad_core._internal import log, one_line
from ogad_core.engine.executors import ExecutorRun, Progress, RowSink, RowTask
from ogad_core.errors import ConfigError, ModelError, OgadError

__all__ = ["RayExecutor", "ray_session"]

#: Shards a worker has in flight: the next one starts while the driver writes the last one.
_IN_FLIGHT_PER_WORKER = 2
#: Shards per worker when the caller gives no shard size (load balance vs per-task overhead).
_SHARDS_PER_WORKER = 4


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("engine ray needs Ray: pip install 'ogad[ray]'", param="engine") from None
    return ray


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """ConfigError unless ``HOST:PORT`` (or ``ray://HOST:PORT``) accepts a TCP connection.

    Ray itself retries an unreachable head for minutes; ``auto`` is left to Ray.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        if address != "auto":
            raise ConfigError(
                f"ray_address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}",
                param="ray_address",
            )
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(
            f"ray_address: nothing answers at {host}:{port} ({one_line(err)})", param="ray_address"
        ) from None


class ray_session:  # noqa: N801 - used as a context manager, reads like a function
    """Connect to Ray for one compute; shut down only a cluster started here.

    ``address=None`` starts a local cluster (``num_cpus`` CPUs; workers import ogad from this
    process's source tree); an address (``ray://host:10001`` or ``host:6379`` / ``auto``) joins
    an existing one and ships this ogad package to its workers (``runtime_env`` ``py_modules``);
    the cluster must have ogad's dependencies (torch, numpy) installed. An already initialised
    Ray (``ray.init`` done by the caller) is used as is.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        self.address, self.num_cpus = address, num_cpus
        self.started = False

    def __enter__(self) -> Any:
        ray = _import_ray()
        if self.address:
            _check_reachable(self.address)
        if ray.is_initialized():
            return ray
        package_dir = str(Path(ogad_core.__file__).resolve().parent)
        try:
            if self.address:
                ray.init(
                    address=self.address,
                    runtime_env={"py_modules": [package_dir]},
                    log_to_driver=False,
                )
            else:
                source_root = str(Path(package_dir).parent)
                path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH")) if p)
                ray.init(
                    num_cpus=self.num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": {"PYTHONPATH": path}},
                )
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = self.address or "a local cluster"
            raise ConfigError(
                f"ray_address: cannot connect to {where}: {one_line(err)}", param="ray_address"
            ) from None
        self.started = True
        return ray

    def __exit__(self, *exc: object) -> None:
        if self.started:
            _import_ray().shutdown()


# ---- on a worker ---------------------------------------------------------------------------

#: the task a worker process last unpickled, by its object id (one task per compute pass)
_TASKS: dict[str, Any] = {}


def _worker_task(ref: Any, threads: int) -> RowTask:
    """The task behind ``ref``, unpickled once per worker process (torch on ``threads``)."""
    key = ref.hex()
    if key not in _TASKS:
        import ray
        import torch

        _TASKS.clear()  # a new pass: let the last one's model go
        torch.set_num_threads(max(1, threads))
        _TASKS[key] = ray.get(ref)
    return _TASKS[key]


def run_shard(boxed: list[Any], rows: np.ndarray, threads: int) -> tuple[Any, Any, str]:
    """One shard on a worker: (rows (B,) int64, values (B, D) float32, this node's id).

    ``boxed`` is ``[ObjectRef of the task]`` (boxed, so Ray does not unpickle it per call)."""
    import ray

    task = _worker_task(boxed[0], threads)
    done_rows: list[np.ndarray] = []
    values: list[np.ndarray] = []

    def collect(r: np.ndarray, v: np.ndarray) -> None:
        done_rows.append(np.asarray(r, dtype=np.int64))
        values.append(np.ascontiguousarray(v, dtype=np.float32))

    task.run(rows, collect)
    node = ray.get_runtime_context().get_node_id()
    return np.concatenate(done_rows), np.concatenate(values), node


# ---- on the driver -------------------------------------------------------------------------


def _failure(ray: Any, err: Exception) -> Exception:
    """The error to raise for a shard that failed after Ray's own retries (one line)."""
    if isinstance(err, ray.exceptions.RayTaskError):
        cause = getattr(err, "cause", None)
        if isinstance(cause, OgadError):
            return cause
        return ModelError(f"a Ray worker failed: {one_line(cause or err, 400)}")
    return ModelError(f"a shard was lost on every retry of its Ray worker: {one_line(err, 400)}")


def _ship_user_code(ray: Any, task: Any) -> None:
    """Pickle by value the classes of the task's model and data that live in the user's files.

    A ``--model file.py:factory`` module (or a class defined in a script or test) exists only in
    this process; Ray workers cannot import it by name, so its code travels with the pickle.
    Installed packages (site-packages, the standard library) and ogad itself go by reference.
    """
    installed = (str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve()))
    types: set[type] = set()
    for value in vars(task).values():
        types |= {type(m) for m in getattr(value, "modules", lambda v=value: [v])()}
        types |= {type(getattr(value, a, None)) for a in ("dataset", "files", "transform")}
    for name in {t.__module__ for t in types}:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if module is None or origin is None or name.split(".")[0] == "ogad_core":
            continue
        resolved = str(Path(origin).resolve())
        if not resolved.startswith(installed) and "site-packages" not in resolved:
            ray.cloudpickle.register_pickle_by_value(module)


def _worker_device(device: Any) -> tuple[float, str]:
    """(GPUs per worker, the device a worker uses): a CUDA run gives each worker one GPU, which
    Ray makes its only visible one (so ``cuda:N`` becomes ``cuda`` there)."""
    if str(device).startswith("cuda"):
        return 1.0, "cuda"
    return 0.0, "cpu"


def _shards(pending: np.ndarray, shard_rows: int) -> list[np.ndarray]:
    """Consecutive slices of ``pending`` (int64 row ids), ``shard_rows`` each (the last shorter)."""
    return [pending[i : i + shard_rows] for i in range(0, len(pending), shard_rows)]


@dataclass
class RayExecutor:
    """Maps a task over a sink's pending rows as Ray tasks, one shard of whole batches each.

    Args:
        address: an existing cluster (``ray://head:10001``, ``head:6379`` or ``auto``); None
            starts a local one for the call (unless Ray is already initialised).
        workers: shards computed at once; default one per CPU slot (per GPU with CUDA).
        shard_batches: batches per shard; default about 4 shards per worker.
        max_retries: Ray's retries of a shard whose worker or node died.
        cpus_per_worker: CPUs (and torch threads) per shard.
        on_shard: called on the driver after each shard is written, with (rows, node id).
    """

    address: str | None = None
    workers: int | None = None
    shard_batches: int | None = None
    max_retries: int = 3
    cpus_per_worker: float = 1.0
    progress: bool = True
    on_shard: Any = None

    def __post_init__(self) -> None:
        for name in ("workers", "shard_batches"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}", param=name)

    def map_rows(self, task: RowTask, sink: RowSink, *, desc: str = "rows") -> ExecutorRun:
        pending = task.order(np.asarray(sink.pending(), dtype=np.int64))
        if not len(pending):
            return ExecutorRun()
        gpus, device = _worker_device(getattr(task, "device", "cpu"))
        remote_task = task.for_worker(device)
        with ray_session(self.address, num_cpus=self.workers) as ray:
            _ship_user_code(ray, remote_task)
            n_workers = self.workers or self._default_workers(ray, gpus)
            batches = -(-len(pending) // task.batch_size)
            per_shard = self.shard_batches or -(-batches // (n_workers * _SHARDS_PER_WORKER))
            shards = _shards(pending, per_shard * task.batch_size)
            run = ExecutorRun(n_rows=len(pending), n_shards=len(shards), n_workers=n_workers)
            started = time.perf_counter()
            self._run(ray, remote_task, shards, sink, run, gpus, desc)
            run.seconds = time.perf_counter() - started
        log.info(
            "ray: %d rows in %d shards on %d workers, %d node(s)",
            run.n_rows,
            run.n_shards,
            run.n_workers,
            len(set(run.shard_nodes)),
        )
        return run

    def _default_workers(self, ray: Any, gpus: float) -> int:
        resources = ray.cluster_resources()
        if gpus:
            return max(1, int(resources.get("GPU", 0) // gpus))
        return max(1, int(resources.get("CPU", 1) // self.cpus_per_worker))

    def _run(
        self,
        ray: Any,
        task: RowTask,
        shards: list[np.ndarray],
        sink: RowSink,
        run: ExecutorRun,
        gpus: float,
        desc: str,
    ) -> None:
        """Keep ``_IN_FLIGHT_PER_WORKER`` shards per worker submitted; write each one back."""
        remote = ray.remote(run_shard).options(
            num_cpus=self.cpus_per_worker, num_gpus=gpus, max_retries=self.max_retries
        )
        boxed = [ray.put(task)]
        threads = max(1, int(self.cpus_per_worker))
        queue = list(reversed(shards))
        in_flight: list[Any] = []
        bar = Progress(run.n_rows, 0, desc, self.progress)
        try:
            while queue or in_flight:
                while queue and len(in_flight) < run.n_workers * _IN_FLIGHT_PER_WORKER:
                    in_flight.append(remote.remote(boxed, queue.pop(), threads))
                (ref,), in_flight = ray.wait(in_flight, num_returns=1)
                try:
                    rows, values, node = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - sorted by _failure
                    raise _failure(ray, err) from None
                sink.write(rows, values)
                run.shard_nodes.append(node)
                bar.update(len(rows))
                if self.on_shard is not None:
                    self.on_shard(rows, node)
        finally:
            bar.close()
            for ref in in_flight:
                ray.cancel(ref, force=True)

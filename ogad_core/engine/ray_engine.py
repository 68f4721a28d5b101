"""Gradient extraction on a Ray cluster (``ogad compute --engine ray``).

How it runs:

- The driver (the ``ogad compute`` process) cuts the rows not yet done in the
  :class:`~ogad_core.run.store.GradientStore` into shards of whole batches.
- A pool of Ray actors (one per CPU slot, or per GPU with ``device="cuda"``) each receives the
  model and the dataset once through Ray's object store and computes one shard at a time with
  the local engine's :func:`~ogad_core.engine.gradients.compute_gradients`; shards start on
  batch boundaries, so each worker sees the same batches as the local engine and the closed form
  is bit-for-bit identical.
- The driver writes every returned shard into the store (positioned writes + done mask). Only the
  driver touches the run directory; workers need the data only when the dataset reads files
  lazily (image paths), and then at the same path on every node.
- A worker that dies mid-shard is restarted by Ray and its shard is submitted again; shards
  already written stay done. A killed driver resumes from the done mask, like the local engine.

Ray is an optional extra (``pip install 'ogad[ray]'``) imported only here, only when called.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import ogad_core
from ogad_core._internal import log, one_line
from ogad_core.engine.gradients import ParamSpec, compute_gradients, gradient_dim
from ogad_core.errors import ConfigError, ModelError, OgadError
from ogad_core.run.store import GradientStore, finished_rows, row_store

__all__ = [
    "ArraySink",
    "GradientShardTask",
    "RayRun",
    "TextEncodeTask",
    "compute_gradients_ray",
    "encode_texts_ray",
    "ray_session",
    "run_shards",
]

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


@dataclass
class GradientShardTask:
    """What a worker runs on a shard: the local engine on ``Subset(dataset, rows)``.

    Picklable; sent once to each worker. ``__call__(rows)`` returns (len(rows), D) float32.
    """

    model: Any
    dataset: Any
    params: ParamSpec = "last"
    batch_size: int = 256
    device: str = "cpu"
    proj_dim: int | None = None
    seed: int = 0
    method: str = "auto"

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        from torch.utils.data import Subset

        return compute_gradients(
            self.model,
            Subset(self.dataset, [int(r) for r in rows]),
            self.params,
            batch_size=self.batch_size,
            device=self.device,
            proj_dim=self.proj_dim,
            seed=self.seed,
            method=self.method,
            progress=False,
            workers=0,  # the Ray actors are the parallelism: decode in the actor itself
        )


class _ShardWorker:
    """A Ray actor holding one task (model + data); computes shards on request."""

    def __init__(self, task: Callable[[np.ndarray], np.ndarray], threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.task = task

    def run(self, rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.task(rows), dtype=np.float32)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class RayRun:
    """What one :func:`run_shards` call did (for logs, tests and benchmarks)."""

    n_rows: int = 0
    n_shards: int = 0
    n_workers: int = 0
    redone_shards: int = 0
    #: seconds from starting the workers to the first shard back, and to the last
    first_shard_s: float = 0.0
    seconds: float = 0.0


class ArraySink:
    """An in-memory stand-in for a GradientStore: (N, D) float32, nothing done yet."""

    def __init__(self, n_rows: int, n_cols: int) -> None:
        self.result = np.empty((n_rows, n_cols), dtype=np.float32)

    def pending(self) -> np.ndarray:
        return np.arange(self.result.shape[0], dtype=np.int64)

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        self.result[rows] = values

    def array(self) -> np.ndarray:
        return self.result


def _shards(pending: np.ndarray, shard_rows: int) -> list[np.ndarray]:
    """Consecutive slices of ``pending`` (int64 row ids), ``shard_rows`` each (the last shorter)."""
    return [pending[i : i + shard_rows] for i in range(0, len(pending), shard_rows)]


def _failure(ray: Any, err: Exception) -> Exception | None:
    """None when ``err`` is a lost worker (redo the shard), else the error to raise."""
    if isinstance(err, ray.exceptions.RayActorError) and getattr(err, "actor_init_failed", False):
        return ModelError(f"a Ray worker could not load the model or data: {one_line(err, 400)}")
    if isinstance(err, ray.exceptions.RayActorError | ray.exceptions.WorkerCrashedError):
        return None
    if isinstance(err, ray.exceptions.RayTaskError):
        cause = getattr(err, "cause", None)
        if isinstance(cause, OgadError):
            return cause
        return ModelError(f"a Ray worker failed: {one_line(cause or err)}")
    return err


class _WorkerPool:
    """``n`` actor slots running ``task``; a slot whose actor died gets a fresh actor."""

    def __init__(self, ray: Any, task: Any, n: int, cpus: float, gpus: float) -> None:
        self.ray = ray
        self.cls = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(_ShardWorker)
        self.task_ref, self.threads = ray.put(task), max(1, int(cpus))
        self.actors = [self._new() for _ in range(n)]

    def _new(self) -> Any:
        return self.cls.remote(self.task_ref, self.threads)

    def replace(self, slot: int, dead: Any) -> None:
        """Start a new actor in ``slot`` unless that was done already for this ``dead`` one."""
        if self.actors[slot] is dead:
            self.ray.kill(dead)
            self.actors[slot] = self._new()  # tasks sent to it wait until it is up

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def run_shards(
    task: Callable[[np.ndarray], np.ndarray],
    sink: Any,
    *,
    shard_rows: int,
    n_workers: int,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    max_retries: int = 3,
) -> RayRun:
    """Compute ``sink.pending()`` rows on Ray actors running ``task``; write them into ``sink``.

    ``sink`` is a GradientStore (or anything with ``pending()`` and ``write(rows, values)``).
    A shard whose worker dies is redone on a new worker (at most ``max_retries`` times); an
    error raised by the task itself is raised here. Needs a connected Ray (:class:`ray_session`).
    """
    ray = _import_ray()
    shards = _shards(np.asarray(sink.pending(), dtype=np.int64), shard_rows)
    run = RayRun(n_rows=sum(len(s) for s in shards), n_shards=len(shards))
    if not shards:
        return run
    run.n_workers = max(1, min(n_workers, len(shards)))
    started = time.perf_counter()
    pool = _WorkerPool(ray, task, run.n_workers, cpus_per_worker, gpus_per_worker)
    queue, attempts, in_flight = deque(range(len(shards))), [0] * len(shards), {}

    def submit(slot: int) -> None:
        actor, shard_id = pool.actors[slot], queue.popleft()
        in_flight[actor.run.remote(shards[shard_id])] = (slot, actor, shard_id)

    for slot in list(range(run.n_workers)) * _IN_FLIGHT_PER_WORKER:
        if queue:
            submit(slot)
    done_rows = 0
    try:
        while in_flight:
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            slot, actor, shard_id = in_flight.pop(ref)
            try:
                values = ray.get(ref)
            except Exception as err:  # noqa: BLE001 - sorted by _failure
                fatal = _failure(ray, err)
                attempts[shard_id] += 1
                if fatal is None and attempts[shard_id] > max_retries:
                    fatal = ModelError(
                        f"shard {shard_id} lost its Ray worker {attempts[shard_id]} times; "
                        f"last error: {one_line(err)}"
                    )
                if fatal is not None:
                    raise fatal from None
                run.redone_shards += 1
                log.warning("ray: a worker died on shard %d; redoing it", shard_id)
                pool.replace(slot, actor)
                queue.appendleft(shard_id)
            else:
                sink.write(shards[shard_id], values)
                run.first_shard_s = run.first_shard_s or time.perf_counter() - started
                done_rows = _report(done_rows, len(shards[shard_id]), run.n_rows)
            if queue:
                submit(slot)
    finally:
        pool.close()
    run.seconds = time.perf_counter() - started
    return run


def _report(done_rows: int, new_rows: int, total: int) -> int:
    """Log progress each time another tenth of ``total`` rows is done; returns the new count."""
    now = done_rows + new_rows
    if now * 10 // total > done_rows * 10 // total:
        log.info("ray: %d of %d rows done", now, total)
    return now


def _ship_user_code(ray: Any, model: Any, dataset: Any) -> None:
    """Pickle by value the classes of ``model`` and ``dataset`` that live in the user's own files.

    A ``--model file.py:factory`` module (or a class defined in a script or test) exists only in
    this process; Ray workers cannot import it by name, so its code travels with the pickle.
    Installed packages (site-packages, the standard library) and ogad itself go by reference.
    """
    installed = (str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve()))
    types = {type(m) for m in getattr(model, "modules", lambda: [model])()}
    types |= {type(dataset), type(getattr(dataset, "dataset", None))}
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
    return 0.0, str(device)


def _default_workers(ray: Any, gpus_per_worker: float, cpus_per_worker: float) -> int:
    resources = ray.cluster_resources()
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1) // cpus_per_worker))


def compute_gradients_ray(
    model: Any,
    dataset: Any,
    params: ParamSpec = "last",
    batch_size: int = 256,
    device: str = "cpu",
    *,
    proj_dim: int | None = None,
    seed: int = 0,
    out: GradientStore | None = None,
    method: str = "auto",
    ray_address: str | None = None,
    workers: int | None = None,
    shard_batches: int | None = None,
    max_retries: int = 3,
) -> np.ndarray:
    """:func:`~ogad_core.engine.gradients.compute_gradients` on a Ray cluster; same results.

    Args (beyond compute_gradients'):
        ray_address: an existing cluster (``ray://head:10001``, ``head:6379`` or ``auto``);
            None starts a local one for this call (unless Ray is already initialised).
        workers: Ray actors; default one per CPU slot (per GPU with a CUDA device).
        shard_batches: batches per shard; default about 4 shards per worker.
        max_retries: times a shard is redone after its worker died.

    Returns:
        (N, D) float32: the store's read-only memmap when ``out`` is given, else an array.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if shard_batches is not None and shard_batches < 1:
        raise ConfigError(f"shard_batches must be >= 1, got {shard_batches}")
    n_rows = len(dataset)
    if n_rows == 0:
        raise ConfigError("the dataset is empty")
    n_cols = proj_dim or gradient_dim(model, params)
    if out is not None and (out.n_rows, out.n_cols) != (n_rows, n_cols):
        raise ConfigError(f"store holds ({out.n_rows}, {out.n_cols}); need ({n_rows}, {n_cols})")
    sink = out if out is not None else ArraySink(n_rows, n_cols)
    gpus, worker_device = _worker_device(device)
    task = GradientShardTask(
        model.cpu().eval(), dataset, params, batch_size, worker_device, proj_dim, seed, method
    )
    with ray_session(ray_address, num_cpus=workers) as ray:
        _ship_user_code(ray, model, dataset)
        n_workers = workers or _default_workers(ray, gpus, 1.0)
        n_pending = len(sink.pending())
        batches = -(-n_pending // batch_size)
        per_shard = shard_batches or max(1, -(-batches // (n_workers * _SHARDS_PER_WORKER)))
        run = run_shards(
            task,
            sink,
            shard_rows=per_shard * batch_size,
            n_workers=n_workers,
            gpus_per_worker=gpus,
            max_retries=max_retries,
        )
    log.info(
        "ray: %d rows in %d shards on %d workers (%d shards redone)",
        run.n_rows,
        run.n_shards,
        run.n_workers,
        run.redone_shards,
    )
    return sink.array()


# ---- the encoder pass: sentence embeddings of texts -----------------------------------------


@dataclass
class TextEncodeTask:
    """What a worker runs on a shard of texts: the local ``encode_texts`` (encoder loaded once).

    ``__call__(rows)`` returns (len(rows), E) float32 embeddings of ``texts[rows]``.
    """

    texts: list[str]
    encoder: str | None
    batch_size: int = 64
    device: str = "cpu"

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        from ogad_core.engine import text_encoder

        return text_encoder.encode_texts(
            [self.texts[int(i)] for i in rows],
            encoder=self.encoder,
            batch_size=self.batch_size,
            device=self.device,
            progress=False,
        )


class _LongestFirst:
    """A row store whose pending rows come longest text first, as encode_texts takes them."""

    def __init__(self, store: Any, texts: list[str]) -> None:
        self.store, self.texts = store, texts

    def pending(self) -> np.ndarray:
        from ogad_core.engine.text_encoder import longest_first

        return longest_first(self.texts, self.store.done)

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        self.store.write(rows, values)


def encode_texts_ray(
    texts: list[str],
    *,
    encoder: str | None,
    cache_dir: Path,
    batch_size: int = 64,
    device: str = "cpu",
    ray_address: str | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """``text_encoder.encode_texts`` on Ray workers, into the same resumable cache; (N, E).

    Shards are runs of whole batches in the local engine's order (longest text first), so every
    worker encodes the batches the local engine would. Every node needs the encoder's files in
    its local model cache (nothing is downloaded).
    """
    from ogad_core.engine import text_encoder

    texts = text_encoder.check_texts(texts)
    key = text_encoder.embedding_key(texts, encoder, "layers")
    path = Path(cache_dir) / f"{key}.npy"
    if (done := finished_rows(path, n_rows=len(texts), fingerprint=key)) is not None:
        return np.array(done, dtype=np.float32)
    model = text_encoder.load_sentence_encoder(encoder, device="cpu")
    dim = text_encoder.embedding_dim(model, "layers")
    del model
    store = row_store(path, n_rows=len(texts), n_cols=dim, fingerprint=key)
    sink = _LongestFirst(store, texts)
    gpus, worker_device = _worker_device(device)
    task = TextEncodeTask(texts, encoder, batch_size, worker_device)
    with ray_session(ray_address, num_cpus=workers) as ray:
        n_workers = workers or _default_workers(ray, gpus, 1.0)
        batches = -(-len(sink.pending()) // batch_size)
        per_shard = max(1, -(-batches // (n_workers * _SHARDS_PER_WORKER)))
        run = run_shards(
            task, sink, shard_rows=per_shard * batch_size, n_workers=n_workers, gpus_per_worker=gpus
        )
    log.info("ray: %d texts encoded on %d workers", run.n_rows, run.n_workers)
    return np.array(store.array(), dtype=np.float32)

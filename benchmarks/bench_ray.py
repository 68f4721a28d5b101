"""The Ray engine against the local one on this machine: wall time, speed-up, overhead.

    nice -n 10 python -m benchmarks.bench_ray [--rows 20000] [--vmap-rows 2000]

Synthetic MNIST-sized inputs (seeded uniform 1x28x28 images, 10 classes) and the built-in
SmallCNN with seeded weights (gradients depend on the weights, not on how good they are). Two
workloads: the closed-form last layer (``params=last``, 10 x 128 + 10 = 1,290 columns), and all
151,306 parameters through ``torch.func.vmap`` projected to 1,024 columns. Each is timed with the
local engine (one process, torch on all CPUs) and with the Ray engine on 1 and 2 workers (one CPU
and one torch thread each) of a local Ray cluster started once; its start is reported
apart. The Ray timings include starting the workers and shipping the model and data to them;
the time to the first shard and the steady rate after it are reported too.
Results go to ``benchmarks/results/ray.json``.

    python -m benchmarks.bench_ray --rows 0 --encoder-images 96

measures only the encoder pass (ResNet-18 on synthetic JPEGs): the local engine against the Ray
executor on a two-node local cluster (``ray.cluster_utils.Cluster``, 1 CPU per node) on the same
cores, and splices its subsection into docs/benchmarks.md ("Scale out").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ogad_core.engine.gradients import compute_gradients
from ogad_core.engine.models import SmallCNN
from ogad_core.engine.ray_engine import RayExecutor, ray_session

RESULTS = Path(__file__).resolve().parent / "results" / "ray.json"


def workload(n: int, seed: int = 0) -> tuple[torch.nn.Module, TensorDataset]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(seed)
    return SmallCNN(in_channels=1, n_classes=10), TensorDataset(x, y)


def timed(fn) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = np.asarray(fn())
    return out, time.perf_counter() - t0


def compare(name: str, n: int, kwargs: dict, exact: bool) -> list[dict]:
    """Local vs Ray on 1 and 2 workers for one workload; checks the results agree.

    For Ray: the whole call, the time to the first shard back (workers starting, model and
    data shipped, one shard computed) and the rows/s after it (the steady rate).
    """
    model, ds = workload(n)
    local, t_local = timed(lambda: compute_gradients(model, ds, progress=False, **kwargs))
    rows = [{"workload": name, "rows": n, "engine": "local", "workers": 1, "seconds": t_local}]
    for workers in (1, 2):
        rows.append(ray_row(name, model, ds, kwargs, workers, local, exact))
    for row in rows:
        row["rows_per_s"] = round(n / row["seconds"])
        row["speedup_vs_local"] = round(t_local / row["seconds"], 2)
        row["seconds"] = round(row["seconds"], 1)
        print(json.dumps(row), flush=True)
    return rows


def ray_row(
    name: str, model: Any, ds: Any, kwargs: dict, workers: int, local: np.ndarray, exact: bool
) -> dict:
    """One Ray run of a workload: seconds, first shard back, steady rate, equal to local."""
    n = len(ds)
    arrived: list[float] = []
    started = time.perf_counter()
    executor = RayExecutor(
        workers=workers,
        shard_batches=max(1, n // (kwargs["batch_size"] * 8 * workers)),
        progress=False,
        on_shard=lambda r, node: arrived.append(time.perf_counter() - started),
    )
    out = np.asarray(compute_gradients(model, ds, progress=False, executor=executor, **kwargs))
    seconds = time.perf_counter() - started
    same = np.array_equal(out, local) if exact else np.allclose(out, local, atol=1e-5)
    shard_rows = n // max(1, len(arrived))
    return {
        "workload": name,
        "rows": n,
        "engine": "ray",
        "workers": workers,
        "seconds": seconds,
        "first_shard_s": round(arrived[0], 1),
        "steady_rows_per_s": round((n - shard_rows) / max(1e-9, seconds - arrived[0])),
        "equal_to_local": bool(same),
    }


def _encode(files: Any, weights: Path, executor: Any = None) -> tuple[np.ndarray, float]:
    """The encoder pass into a fresh store: (features, seconds)."""
    import tempfile

    from ogad_core.engine.image_encoder import encoder_pass

    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        done = encoder_pass(
            files,
            "torchvision:resnet18",
            weights=weights,
            batch_size=16,
            workers=2,
            cache_dir=Path(cache),
            progress=False,
            executor=executor,
        )
        return done.features, time.perf_counter() - t0


def two_node_cluster() -> Any:
    """A head (1 CPU) and one worker node (1 CPU) on this machine, connected to (Cluster)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    root = str(Path(__file__).resolve().parents[1])
    ray.init(
        address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": root}}
    )
    return cluster


def encoder_two_nodes(n: int, root: Path) -> dict:
    """The encoder pass (ResNet-18 on n JPEGs): local engine (2 threads, 2 workers) vs the Ray
    executor on a two-node local cluster (1 CPU each) on the same 2 cores; local, Ray (cold:
    workers start), then Ray (warm) and local alternated twice; ratios against the best local."""
    import ray

    from benchmarks.bench_images import make_jpegs
    from ogad_core.data import load_data

    folder = root / f"ray_jpegs_{n}"
    make_jpegs(folder, n)
    weights = root / "resnet18_random.pth"
    torch.manual_seed(0)
    from torchvision.models import resnet18

    torch.save(resnet18().state_dict(), weights)
    files = load_data(f"imagefolder:{folder}", run_dir=root, image_size=32).train.inputs
    out: dict = {"n": n, "load_average": [round(os.getloadavg()[0], 1)]}
    local_runs = [_encode(files, weights)[1]]
    t0 = time.perf_counter()
    cluster = two_node_cluster()
    out["cluster_start_s"] = round(time.perf_counter() - t0, 1)
    nodes: list[str] = []
    executor = RayExecutor(workers=2, progress=False, on_shard=lambda r, n_: nodes.append(n_))
    try:
        remote, t_cold = _encode(files, weights, executor)
        warm_runs = []
        for _ in range(2):  # alternated with the local engine: the load moves on shared cores
            warm_runs.append(_encode(files, weights, executor)[1])
            local, t_local = _encode(files, weights)
            local_runs.append(t_local)
    finally:
        ray.shutdown()
        cluster.shutdown()
    best_local = min(local_runs)
    out.update(
        {
            "local_seconds": [round(t, 1) for t in local_runs],
            "ray_cold_seconds": round(t_cold, 1),
            "ray_warm_seconds": [round(t, 1) for t in warm_runs],
            "nodes_used": len(set(nodes)),
            "ratio_cold": round(t_cold / best_local, 2),
            "ratio_warm": round(min(warm_runs) / best_local, 2),
            "max_abs_diff": float(np.abs(remote - local).max()),
        }
    )
    out["load_average"].append(round(os.getloadavg()[0], 1))
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--vmap-rows", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=RESULTS, help="the result file")
    ap.add_argument(
        "--encoder-images",
        type=int,
        default=0,
        help="also: the encoder pass on N JPEGs, local vs a two-node local Ray cluster "
        "(merged into the result file; its docs subsection is spliced)",
    )
    ap.add_argument("--root", type=Path, default=Path("/tmp/ogad_bench_ray"))
    args = ap.parse_args()
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "load_average_at_start": list(os.getloadavg()),
        },
        "runs": [],
    }
    if args.rows:
        gradient_runs(args, results)
        results["machine"]["load_average_at_end"] = list(os.getloadavg())
    elif args.out.is_file():  # keep the gradient runs measured before, with their machine
        results = json.loads(args.out.read_text())
    if args.encoder_images:
        from benchmarks.docs_splice import splice
        from benchmarks.scale_docs import docs_encoder_two_nodes

        args.root.mkdir(parents=True, exist_ok=True)
        results["encoder_two_nodes"] = encoder_two_nodes(args.encoder_images, args.root)
        text = docs_encoder_two_nodes(results["encoder_two_nodes"])
        splice(
            text,
            "### The encoder pass on a two-node Ray cluster",
            after="### Gradient extraction on Ray",
        )
    args.out.write_text(json.dumps(results, indent=2) + "\n")


def gradient_runs(args: argparse.Namespace, results: dict) -> None:
    """The gradient workloads on a local 2-CPU Ray cluster vs the local engine."""
    t0 = time.perf_counter()
    with ray_session(None, num_cpus=2) as ray:
        results["ray_cluster_start_s"] = round(time.perf_counter() - t0, 1)
        results["machine"]["ray"] = ray.__version__
        results["runs"] += compare(
            "last layer, closed form", args.rows, {"params": "last", "batch_size": 256}, True
        )
        results["runs"] += compare(
            "all params, vmap + projection to 1,024",
            args.vmap_rows,
            {"params": "all", "batch_size": 64, "proj_dim": 1024},
            False,
        )


if __name__ == "__main__":
    main()

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--vmap-rows", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=RESULTS, help="the result file")
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
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""The gradient map at 50,000 / 200,000 / 1,000,000 rows: time, ANN recall, trustworthiness.

    nice -n 10 python -m benchmarks.bench_map [--sizes 50000,200000] [--dim 256]

Synthetic gradients (the map's cost depends on N and on the width only through PCA): a seeded
float32 memmap of ``--dim`` columns, 20 Gaussian clusters with their own per-column scales and
5% of rows stretched 1.5x, written once under ``--tmp-dir`` and sliced for each size.

For each size it times ``gradient_map`` end to end (PCA, kNN graph, UMAP, placement) and
measures the map's trustworthiness (sklearn, 15 neighbours) on a seeded subsample of 5,000 rows.
``--compare-full`` also times UMAP on the whole approximate graph (no subsample fit) at the
sizes above ``UMAP_FIT_ROWS``. At the smallest size above ``ANN_MIN_ROWS`` it measures recall@15
of the HNSW graph against exact neighbours on the PCA coordinates. Results go to
``benchmarks/results/map.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
from sklearn.manifold import trustworthiness

import ogad_core.scoring.gradient_map as gm

RESULTS = Path(__file__).resolve().parent / "results" / "map.json"
TRUST_ROWS = 5_000
N_CLUSTERS = 20


def synthetic_gradients(n: int, dim: int, tmp_dir: Path, seed: int = 0) -> np.memmap:
    """A seeded (n, dim) float32 memmap of clustered rows (reused when already written)."""
    path = tmp_dir / f"map_synthetic_{n}x{dim}_s{seed}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (N_CLUSTERS, dim)).astype(np.float32)
    scales = rng.uniform(0.3, 2.0, (N_CLUSTERS, dim)).astype(np.float32)
    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), "w+", np.float32, (n, dim))
    step = 100_000
    for a in range(0, n, step):
        b = min(n, a + step)
        lab = rng.integers(0, N_CLUSTERS, b - a)
        rows = centers[lab] + rng.standard_normal((b - a, dim), dtype=np.float32) * scales[lab]
        rows[rng.random(b - a) < 0.05] *= 1.5
        out[a:b] = rows
    out.flush()
    del out
    os.replace(path.with_suffix(".tmp.npy"), path)
    return np.load(path, mmap_mode="r")


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far: on a shared machine, the fair figure."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ann_recall(Z: np.ndarray, k: int = 15) -> dict:
    """recall@k of the HNSW graph against exact neighbours on (N, d) ``Z``; and both times."""
    t0 = time.perf_counter()
    _, exact = gm._exact_knn(Z, k)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, approx = gm._hnsw_search(gm._hnsw_index(Z), Z, k)
    t_ann = time.perf_counter() - t0
    hits = [len(set(a) & set(b)) for a, b in zip(exact, approx, strict=True)]
    return {
        "rows": int(Z.shape[0]),
        "k": k,
        "recall": round(float(np.mean(hits)) / k, 4),
        "exact_seconds": round(t_exact, 1),
        "hnsw_seconds": round(t_ann, 1),
    }


def time_map(X: np.ndarray, *, fit_rows: int) -> dict:
    """Time gradient_map on ``X`` with UMAP_FIT_ROWS = ``fit_rows``; trustworthiness of it."""
    saved = gm.UMAP_FIT_ROWS
    gm.UMAP_FIT_ROWS = fit_rows
    load_start = os.getloadavg()[0]
    try:
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        xy = gm.gradient_map(X, seed=0)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    finally:
        gm.UMAP_FIT_ROWS = saved
    n = X.shape[0]
    pick = np.sort(np.random.default_rng(1).choice(n, size=min(TRUST_ROWS, n), replace=False))
    trust = trustworthiness(np.asarray(X[pick]), xy[pick], n_neighbors=15)
    return {
        "rows": n,
        "dim": int(X.shape[1]),
        "strategy": "umap on all rows" if n <= fit_rows else f"fit {fit_rows:,} + place",
        "knn": "exact" if min(n, fit_rows) <= gm.ANN_MIN_ROWS else "hnsw (faiss)",
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "rows_per_s": round(n / seconds),
        "trustworthiness@15": round(float(trust), 4),
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50000,200000,1000000")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--tmp-dir", type=Path, default=Path("/tmp/ogad_bench_map"))
    ap.add_argument("--compare-full", default="", help="sizes to also map with UMAP on all rows")
    ap.add_argument("--out", type=Path, default=RESULTS, help="the result file")
    args = ap.parse_args()
    args.tmp_dir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    full_sizes = {int(s) for s in args.compare_full.split(",") if s}
    X_all = synthetic_gradients(max(sizes), args.dim, args.tmp_dir)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": list(os.getloadavg()),
        },
        "synthetic": f"{N_CLUSTERS} Gaussian clusters, {args.dim} columns, float32 memmap",
        "maps": [],
    }
    gm.gradient_map(X_all[:2000], seed=0)  # numba compiles UMAP once, outside the timings
    recall_size = min((s for s in sizes if s > gm.ANN_MIN_ROWS), default=None)
    if recall_size:
        Z = gm._pca_reduce(X_all[:recall_size], 50, seed=0)
        results["ann_recall"] = ann_recall(Z)
        print(json.dumps(results["ann_recall"]), flush=True)
    runs = [(n, gm.UMAP_FIT_ROWS) for n in sizes]
    runs += [(n, n) for n in sorted(full_sizes) if n > gm.UMAP_FIT_ROWS]  # the slow ones last
    for n, fit_rows in runs:
        row = time_map(X_all[:n], fit_rows=fit_rows)
        results["maps"].append(row)
        print(json.dumps(row), flush=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""The duplicate type's candidate searches at scale: HNSW graph vs inverted file (IVF-Flat).

``python -m benchmarks.bench_candidate_search 1000000``: N elastically deformed mnist5k digits
(``bench_issues --verify``'s recipe: another hand, not a copy) with 1% of them replaced by a
shifted, rotated or rescaled copy of another; the 16-d PCA of their 16 x 16 pixels and of
the pixels' Fourier magnitude (unit length), the two duplicate-only candidate spaces of an
image run. Per space and index: CPU and wall seconds (build and search of every row's 6
nearest), recall@6 against an exact search on 2,000 rows, and the planted copies whose
source is among their 6 nearest (either direction) in that space, and in either space.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: the indexes compared: the graph every search used before, the duplicate type's now
INDEXES = ("hnsw", "ivf")


def planted_signatures(n: int, tmp: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 256) float32 signatures of N deformed digits, 1% replaced by a transformed copy of
    another row, and the (2, N / 100) planted rows and their sources."""
    from benchmarks.bench_issues import _elastic, _mnist_digits, _transformed
    from ogad_core.issues.properties import _signatures

    rng = np.random.default_rng(seed)
    digits = _mnist_digits(tmp)
    sig = np.empty((n, 256), np.float32)
    for lo in range(0, n, 50_000):
        x = _elastic(digits[np.arange(lo, min(n, lo + 50_000)) % len(digits)], rng)
        sig[lo : lo + len(x)] = _signatures(x / 255.0)
    planted = rng.choice(n, size=max(n // 100, 3), replace=False)
    sources = (planted + 1 + rng.integers(0, n - 1, len(planted))) % n
    sources = np.where(np.isin(sources, planted), (sources + 1) % n, sources)
    xs = _elastic(digits[sources % len(digits)], rng)
    kinds = ("shift", "rotate", "rescale")
    for k, (i, j) in enumerate(zip(planted, sources, strict=True)):
        sig[j] = _signatures(xs[k : k + 1] / 255.0)[0]
        sig[i] = _signatures(_transformed(xs[k], kinds[k % 3])[None] / 255.0)[0]
    return sig, np.stack([planted, sources])


def candidate_spaces(sig: np.ndarray) -> dict[str, np.ndarray]:
    """The 16-d PCAs of the pixels and of their unit-length Fourier magnitude."""
    from ogad_core.issues.base import PCA_DIM, REFERENCE_ROWS, fourier_magnitude
    from ogad_core.space.pca import pca_transform

    fourier = fourier_magnitude(sig)
    fourier /= np.maximum(np.linalg.norm(fourier, axis=1, keepdims=True), 1e-12)
    return {
        name: pca_transform(m, PCA_DIM, seed=0, fit_rows=REFERENCE_ROWS)
        for name, m in (("pixels", sig), ("fourier", fourier))
    }


def search(z: np.ndarray, index: str, k: int = 6) -> tuple[np.ndarray, float, float]:
    """(N, k + 1) neighbours of every row (itself among them), CPU and wall seconds."""
    from ogad_core.space.knn import hnsw_index, hnsw_search, ivf_index

    cpu, wall = time.process_time(), time.perf_counter()
    built = hnsw_index(z) if index == "hnsw" else ivf_index(z)
    idx = hnsw_search(built, z, k + 1)[1]
    return idx, time.process_time() - cpu, time.perf_counter() - wall


def copies_within(idx: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """(P,) bool: the source is among the copy's neighbours or the copy among the source's."""
    copy, source = planted
    return (idx[copy] == source[:, None]).any(axis=1) | (idx[source] == copy[:, None]).any(axis=1)


def run(n: int, tmp: Path) -> dict[str, Any]:
    """The comparison's figures (see the module doc)."""
    import faiss

    sig, planted = planted_signatures(n, tmp)
    spaces = candidate_spaces(sig)
    queries = np.random.default_rng(0).choice(n, 2000, replace=False)
    out: dict[str, Any] = {"rows": n, "load_start": os.getloadavg()[0]}
    found: dict[str, list[np.ndarray]] = {i: [] for i in INDEXES}
    for name, z in spaces.items():
        exact = faiss.IndexFlatL2(z.shape[1])
        exact.add(z)
        truth = exact.search(z[queries], 7)[1][:, 1:]
        for index in INDEXES:
            idx, cpu, wall = search(z, index)
            hits = [len(set(t) & set(i)) for t, i in zip(truth, idx[queries], strict=True)]
            within = copies_within(idx, planted)
            found[index].append(within)
            out[f"{name}/{index}"] = {
                "cpu_s": round(cpu, 1),
                "wall_s": round(wall, 1),
                "recall_at_6": round(float(np.sum(hits)) / truth.size, 4),
                "copies_within_6": round(float(within.mean()), 4),
            }
            print(name, index, out[f"{name}/{index}"], flush=True)
    for index, w in found.items():
        out[f"copies_within_6_either/{index}"] = round(float(np.logical_or(*w).mean()), 4)
    out["load_end"] = os.getloadavg()[0]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rows", type=int, nargs="?", default=1_000_000)
    p.add_argument("--tmp-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="a JSON file for the figures")
    a = p.parse_args(argv)
    tmp = a.tmp_dir or Path(tempfile.mkdtemp(prefix="ogad_search_"))
    result = run(a.rows, tmp)
    print(json.dumps(result))
    if a.out:
        a.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

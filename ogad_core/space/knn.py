"""The one nearest-neighbour search (faiss), shared by the gradient map, the review evidence
and the explanations.

Exact (``IndexFlatL2``, brute force in float32) up to ``ANN_MIN_ROWS`` rows; an HNSW graph
above (recall@15 about 0.97 on the map's PCA coordinates at 50,000 rows, docs/benchmarks.md).
An inverted file (``ivf_index``) serves the issue types' searches in a 16-d PCA above 100,000
rows: the candidate searches of every row (3.1x cheaper than the graph at 1,000,000 rows,
recall@6 0.96) and the density estimates among a 100,000-row reference.
faiss is imported lazily: the dashboard imports this module without paying for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ogad_core._internal import worker_count

__all__ = [
    "ANN_MIN_ROWS",
    "flat_index",
    "hnsw_index",
    "hnsw_search",
    "index_for",
    "ivf_index",
    "ivf_search_by_list",
    "ivf_self_search",
    "knn_excluding_self",
    "knn_graph",
]

#: Above this many rows neighbour searches over all rows are approximate (HNSW); at or below, exact.
ANN_MIN_ROWS = 20_000
#: HNSW graph: links per node, and the candidate lists when building and searching.
HNSW_M, HNSW_EF_BUILD, HNSW_EF_SEARCH = 16, 64, 32
#: k-means iterations training an inverted file's lists (faiss's default 25; 250,000 rows of
#: bench_issues --images, three 16-d PCAs: the build 10.3 -> 5.6 CPU s, recall@7 of the
#: candidate search 0.966 / 0.886 / 0.963 -> 0.965 / 0.882 / 0.962, planted copies' sources
#: among the candidates 91.4% -> 91.7%)
IVF_TRAIN_ITERATIONS = 10
#: inverted file (few dimensions, many rows): lists per sqrt(rows) (a power of 2 nearest),
#: lists searched, training rows per list (faiss's least, 39: at 1,000,000 rows the three
#: candidate searches' k-means trains on 159,744 rows, not 64 a list's 262,144)
IVF_LISTS_PER_ROOT, IVF_PROBE, IVF_TRAIN_PER_LIST = 4, 16, 39
#: lists a density estimate's search among a seeded reference subsample scans (the label and
#: outlier types' k = 51 nearest among 100,000 rows, 1,024 lists; 120,000 synthetic rows:
#: recall@51 against an exact search 0.998 / 0.992 -- the HNSW graph's 0.996 -- at 8.5 CPU s
#: a search against the graph's 23; nprobe 32: 0.95, the label score's Spearman 0.958).
#: 250,000 rows of bench_issues --images, recall@52 (features / statistics) at 64 lists
#: scanned 0.998 / 0.994, at 48 0.987 / 0.985 for about 15% less CPU, at 40 0.972 / 0.976
IVF_REFERENCE_PROBE = 48


def _faiss() -> Any:
    import faiss  # lazy: a heavy import

    faiss.omp_set_num_threads(worker_count())
    return faiss


def flat_index(Z: np.ndarray) -> Any:
    """An exact faiss L2 index over the rows of (N, d) ``Z``."""
    index = _faiss().IndexFlatL2(Z.shape[1])
    index.add(np.ascontiguousarray(Z, dtype=np.float32))
    return index


def hnsw_index(Z: np.ndarray) -> Any:
    """A faiss HNSW index over the rows of (N, d) float32 ``Z`` (L2; faiss seeds its levels)."""
    index = _faiss().IndexHNSWFlat(Z.shape[1], HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_BUILD
    index.add(np.ascontiguousarray(Z, dtype=np.float32))
    return index


def ivf_index(Z: np.ndarray, seed: int = 0) -> Any:
    """A faiss inverted-file index (IVF-Flat, L2) over the rows of (N, d) float32 ``Z``: about
    IVF_LISTS_PER_ROOT x sqrt(N) k-means lists (a power of 2) trained on IVF_TRAIN_PER_LIST
    seeded rows a list for IVF_TRAIN_ITERATIONS iterations; a search scans the IVF_PROBE
    nearest lists. For few dimensions (a 16-d PCA) a third to a quarter of an HNSW graph's
    CPU time at 100,000-1,000,000 rows (docs/benchmarks.md)."""
    faiss = _faiss()
    n, d = Z.shape
    lists = int(2 ** np.round(np.log2(max(IVF_LISTS_PER_ROOT * np.sqrt(n), 1))))
    lists = max(1, min(lists, n // 39))  # faiss asks for 39 training rows a list
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, lists)
    index.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
    index.cp.seed = seed
    index.cp.niter = IVF_TRAIN_ITERATIONS
    rows = np.random.default_rng(seed).choice(n, min(n, IVF_TRAIN_PER_LIST * lists), replace=False)
    index.train(np.ascontiguousarray(Z[np.sort(rows)], dtype=np.float32))
    index.add(np.ascontiguousarray(Z, dtype=np.float32))
    index.nprobe = min(IVF_PROBE, lists)
    return index


def ivf_self_search(index: Any, Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) float32 distances and int32 indices of the k nearest of each row of (N, d) ``Z``
    (itself included) in the inverted file ``index`` that holds exactly those rows: the rows
    searched list by list, so that consecutive queries scan the same lists while they are in
    the CPU's cache (the same results in row order; 960,000 16-d rows, 4,096 lists scanning
    16: 43.5 -> 31.5 CPU s)."""
    order = ivf_list_rows(index)
    dist, idx = hnsw_search(index, Z[order], k)
    dist[order], idx[order] = dist.copy(), idx.copy()
    return dist, idx


def ivf_search_by_list(index: Any, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, k) float32 distances and int32 indices of the k nearest of each row of (M, d) ``Q``
    in the inverted file ``index``: the queries searched in the order of their nearest list
    (as :func:`ivf_self_search` does for the rows the index holds), so that consecutive
    queries scan mostly the same lists while they are in the CPU's cache; results in row
    order."""
    Q = np.ascontiguousarray(Q, dtype=np.float32)
    nearest = index.quantizer.assign(Q, 1).ravel()
    order = np.argsort(nearest, kind="stable")
    dist, idx = hnsw_search(index, Q[order], k)
    dist[order], idx[order] = dist.copy(), idx.copy()
    return dist, idx


def ivf_list_rows(index: Any) -> np.ndarray:
    """(N,) int64 the row ids an inverted file holds, list by list (its lists' order)."""
    faiss, lists = _faiss(), index.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(index.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)


def index_for(Z: np.ndarray) -> Any:
    """Exact index up to ANN_MIN_ROWS rows of (N, d) ``Z``, HNSW above."""
    return flat_index(Z) if Z.shape[0] <= ANN_MIN_ROWS else hnsw_index(Z)


def hnsw_search(index: Any, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, k) float32 Euclidean distances and (M, k) int32 indices of (M, d) ``Q``'s neighbours
    (any faiss index; an HNSW one searches with efSearch >= 2k)."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
    sq_dists, indices = index.search(np.ascontiguousarray(Q, dtype=np.float32), k)
    return np.sqrt(np.maximum(sq_dists, 0)).astype(np.float32), indices.astype(np.int32)


def knn_excluding_self(index: Any, Z: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """(m, k) int64 rows of the k nearest other rows of each of (m,) ``rows``, nearest first.

    ``index`` holds the rows of (N, d) ``Z``. A row is never its own neighbour; where the search
    did not return it (duplicates at distance 0) the k+1-th result is dropped instead. Rows the
    approximate search left short (-1) are searched again exactly.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if k == 0 or len(rows) == 0:
        return np.empty((len(rows), k), dtype=np.int64)
    _, found = hnsw_search(index, Z[rows], k + 1)
    found = found.astype(np.int64)
    drop = found == rows[:, None]
    drop[~drop.any(axis=1), -1] = True
    out = found[~drop].reshape(len(rows), k)
    short = (out < 0).any(axis=1)
    if short.any() and hasattr(index, "hnsw"):
        out[short] = knn_excluding_self(flat_index(Z), Z, rows[short], k)
    return out


def knn_graph(Z: np.ndarray, k: int, *, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows of (N, d) ``Z``, itself first: (N, k) float32 distances and
    (N, k) int32 indices (UMAP's ``precomputed_knn`` layout).

    Exact when ``exact`` (default: up to ANN_MIN_ROWS rows), HNSW otherwise. A row the search
    did not return first (duplicates tie at distance 0, or HNSW missed it) is put first.
    """
    exact = Z.shape[0] <= ANN_MIN_ROWS if exact is None else exact
    index = flat_index(Z) if exact else hnsw_index(Z)
    dists, indices = hnsw_search(index, Z, k)
    own = np.arange(Z.shape[0], dtype=np.int32)
    missing = indices[:, 0] != own
    if missing.any():
        indices[missing, 1:] = indices[missing, :-1]
        dists[missing, 1:] = dists[missing, :-1]
        indices[missing, 0], dists[missing, 0] = own[missing], 0.0
    return dists, indices

"""The gradient map: a 2-D UMAP picture of the per-sample gradients (``ogad map``).

PCA first (to ``pca_dim`` dimensions, seeded randomized SVD), then the k nearest neighbours and
UMAP on them. For a large matrix (a memmap of tens of thousands of 5,130-wide rows) PCA is fit on
a seeded subsample of rows and applied chunk by chunk, so the matrix is never loaded whole.
``umap`` is imported inside ``gradient_map`` only: its first import compiles numba code (~30 s).

At scale (figures in docs/benchmarks.md, "The map at a million points"):

- up to ``ANN_MIN_ROWS`` rows the neighbours are exact, above an HNSW graph gives them
  approximately (both faiss, :mod:`ogad_core.space.knn`; recall@15 about 0.97 against exact
  at 50,000 rows);
- above ``UMAP_FIT_ROWS`` rows UMAP is fit on a seeded subsample of that many rows and every
  other row is placed at the weighted mean of its nearest fitted rows (UMAP's own ``transform``
  starts the same way), so the cost beyond the subsample is one approximate kNN query per row.

The map is the only 2-D picture of the gradients; the random projection that shrinks wide
gradients elsewhere in ogad is not a map.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ogad_core._internal import row_chunks
from ogad_core.errors import ConfigError, DataError
from ogad_core.space.knn import ANN_MIN_ROWS, hnsw_index, hnsw_search, knn_graph
from ogad_core.space.pca import pca_transform

__all__ = ["ANN_MIN_ROWS", "PCA_FIT_ELEMENTS", "UMAP_FIT_ROWS", "gradient_map"]

#: PCA is fit on at most this many matrix elements (rows x columns): 2**26 float32 = 256 MiB,
#: i.e. about 13,000 rows of a 5,130-wide gradient; more rows are a seeded random subsample.
PCA_FIT_ELEMENTS = 2**26
#: Above this many rows UMAP is fit on a seeded subsample of this size; the rest are placed.
UMAP_FIT_ROWS = 100_000
#: Below this many points UMAP starts from a random layout (its spectral start needs more).
_MIN_SPECTRAL_POINTS = 16


def _column_range(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min and max of (N, D) ``X``, chunk by chunk; DataError on NaN or inf."""
    lo = np.full(X.shape[1], np.inf)
    hi = np.full(X.shape[1], -np.inf)
    for rows in row_chunks(X.shape[0], X.shape[1] * X.itemsize):
        chunk = np.asarray(X[rows])
        if chunk.dtype.kind == "f" and not np.isfinite(chunk).all():
            first = rows.start + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
            raise DataError(f"gradients contain NaN or inf (first at row {first})")
        np.minimum(lo, chunk.min(axis=0), out=lo)
        np.maximum(hi, chunk.max(axis=0), out=hi)
    return lo, hi


def _pca_reduce(X: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """(N, n_components) float32 PCA coordinates of (N, D) ``X``: fit on all rows when
    N * D <= PCA_FIT_ELEMENTS, else on a seeded subsample of rows; transformed in row chunks."""
    max_rows = max(n_components + 1, PCA_FIT_ELEMENTS // X.shape[1])
    return pca_transform(X, n_components, seed=seed, fit_rows=max_rows)


def _svd_coordinates(X: np.ndarray) -> np.ndarray:
    """(N, 2) float32 coordinates on the first two principal axes (zero-padded); N is tiny."""
    centered = np.asarray(X, dtype=np.float64)
    centered = centered - centered.mean(axis=0)
    out = np.zeros((X.shape[0], 2), dtype=np.float32)
    if not centered.any():
        return out
    u, s, vt = np.linalg.svd(centered, full_matrices=False)
    k = min(2, int(np.count_nonzero(s > s[0] * 1e-9)))
    # Deterministic signs: the largest-|loading| entry of each axis is positive.
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    signs[signs == 0] = 1.0
    out[:, :k] = (u[:, :k] * s[:k] * signs).astype(np.float32)
    return out


def _knn_graph(Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) float32 distances and (N, k) int32 indices of each row's k nearest rows, itself
    first (UMAP's ``precomputed_knn`` layout): :func:`~ogad_core.space.knn.knn_graph`, exact
    up to ANN_MIN_ROWS rows. Precomputing it spares UMAP's own approximate search, whose numba
    code takes minutes to compile in every new process."""
    return knn_graph(Z, k, exact=Z.shape[0] <= ANN_MIN_ROWS)


def _place_by_neighbours(dists: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """(M, 2) weighted means of neighbours' coordinates; weights as UMAP's fuzzy memberships.

    ``dists`` (M, k) to the neighbours whose (M, k, 2) ``coords`` are given; weight
    exp(-(d - d_nearest) / mean(d - d_nearest)), so the nearest neighbour counts most.
    """
    excess = dists - dists[:, :1]
    scale = excess.mean(axis=1, keepdims=True)
    weights = np.exp(-excess / np.where(scale > 0, scale, 1.0))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("mk,mkc->mc", weights, coords).astype(np.float32)


def _umap_fit(Z: np.ndarray, k: int, min_dist: float, seed: int) -> np.ndarray:
    """(N, 2) float32 UMAP layout of (N, d) ``Z`` on its precomputed kNN graph."""
    knn_dists, knn_indices = _knn_graph(Z, k)

    import umap  # lazy: the first import compiles numba code

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=k,
        min_dist=float(min_dist),
        random_state=int(seed),
        n_jobs=1,  # a seeded UMAP runs on one thread anyway; saying so avoids its warning
        init="spectral" if Z.shape[0] >= _MIN_SPECTRAL_POINTS else "random",
        precomputed_knn=(knn_indices, knn_dists),
    )
    with warnings.catch_warnings():
        # No NNDescent index is built, so UMAP.transform of new points is unavailable: fine.
        warnings.filterwarnings("ignore", message=r".*knn_search_index.*", category=UserWarning)
        return np.asarray(reducer.fit_transform(Z), dtype=np.float32)


def _umap_subsample_fit(Z: np.ndarray, k: int, min_dist: float, seed: int) -> np.ndarray:
    """(N, 2): UMAP on UMAP_FIT_ROWS seeded rows; every other row placed by its neighbours."""
    n = Z.shape[0]
    fitted = np.sort(np.random.default_rng(seed).choice(n, size=UMAP_FIT_ROWS, replace=False))
    coords = np.empty((n, 2), dtype=np.float32)
    fitted_coords = _umap_fit(Z[fitted], k, min_dist, seed)
    coords[fitted] = fitted_coords
    rest = np.setdiff1d(np.arange(n), fitted, assume_unique=True)
    index = hnsw_index(Z[fitted])
    for chunk in row_chunks(rest.size, Z.shape[1] * 4):
        rows = rest[chunk]
        dists, near = hnsw_search(index, Z[rows], k)
        coords[rows] = _place_by_neighbours(dists, fitted_coords[near])
    return coords


def gradient_map(
    gradients: Any,
    *,
    seed: int = 0,
    pca_dim: int = 50,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> np.ndarray:
    """2-D map of the gradients: PCA to ``pca_dim`` dims (when wider), kNN graph, then UMAP.

    The kNN graph is exact up to ANN_MIN_ROWS rows and approximate (HNSW) above; above
    UMAP_FIT_ROWS rows UMAP is fit on a seeded subsample and the other rows are placed by
    their nearest fitted rows (see the module docstring).

    Args:
        gradients: (N, D) array or np.memmap, one row per sample.
        seed: seeds the PCA subsample, the randomized SVD and UMAP (``random_state``; UMAP then
            runs single-threaded and the map is reproducible).
        pca_dim: PCA dimensions before UMAP; no PCA when D <= pca_dim.
        n_neighbors: UMAP neighbours, reduced to N - 1 on small inputs.
        min_dist: UMAP ``min_dist``.

    Returns:
        (N, 2) float32 coordinates (x, y) in row order. Constant columns are ignored; if every
        column is constant (all rows equal) all points are at (0, 0); for N <= 3 the
        coordinates are the first two principal components instead of UMAP.

    Raises:
        ConfigError: bad parameters. DataError: not a 2-D numeric matrix, or NaN / inf.
    """
    if pca_dim < 2:
        raise ConfigError(f"pca_dim must be at least 2, got {pca_dim}")
    if n_neighbors < 2:
        raise ConfigError(f"n_neighbors must be at least 2, got {n_neighbors}")
    if not 0.0 <= min_dist:
        raise ConfigError(f"min_dist must be >= 0, got {min_dist}")
    X = gradients if isinstance(gradients, np.ndarray) else np.asarray(gradients)
    if X.ndim != 2 or X.dtype.kind not in "fiu":
        raise DataError(f"gradients must be a 2-D numeric array, got shape {X.shape} {X.dtype}")
    n = X.shape[0]
    if n == 0:
        return np.empty((0, 2), dtype=np.float32)
    if X.shape[1] == 0:
        return np.zeros((n, 2), dtype=np.float32)
    lo, hi = _column_range(X)
    varying = np.flatnonzero(hi > lo)
    if varying.size == 0:
        return np.zeros((n, 2), dtype=np.float32)
    if n <= 3:
        return _svd_coordinates(np.asarray(X)[:, varying])
    if X.shape[1] > pca_dim:
        Z = _pca_reduce(X, pca_dim, seed)
    else:
        Z = np.asarray(X[:, varying], dtype=np.float32)

    k = min(int(n_neighbors), n - 1)
    if n > UMAP_FIT_ROWS:
        coords = _umap_subsample_fit(Z, k, min_dist, seed)
    else:
        coords = _umap_fit(Z, k, min_dist, seed)
    coords = np.asarray(coords, dtype=np.float32)
    if coords.shape != (n, 2) or not np.isfinite(coords).all():
        raise DataError("UMAP returned non-finite coordinates for these gradients")
    return coords

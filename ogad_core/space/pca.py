"""The one PCA helper: fit on a seeded subsample of rows, transform every row chunk by chunk.

Used by the gradient map (before UMAP), the explanations' neighbour space and the re-ranker's
features. A memmap of gradients far larger than memory is never loaded whole: at most
``fit_rows`` rows are read for the fit, and the transform reads one row chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ogad_core._internal import row_chunks

__all__ = ["as_float32_rows", "fit_sample", "pca_transform"]

#: rows -> (m, D) float32 working copy (default: the rows as they are)
RowReader = Callable[[np.ndarray, "np.ndarray | slice"], np.ndarray]


def as_float32_rows(X: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """(m, D) float32 copy of the selected rows of (N, D) ``X`` (array or memmap)."""
    return np.asarray(X[rows], dtype=np.float32)


def fit_sample(n_rows: int, max_rows: int, seed: int) -> np.ndarray:
    """(m,) sorted row indices to fit on: all rows when ``n_rows <= max_rows``, else a seeded
    sample of ``max_rows`` of them."""
    if n_rows <= max_rows:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=max_rows, replace=False))


def pca_transform(
    X: np.ndarray,
    n_components: int,
    *,
    seed: int,
    fit_rows: int,
    read: RowReader = as_float32_rows,
) -> np.ndarray:
    """(N, k) float32 PCA coordinates of (N, D) ``X``, k = min(n_components, rows fit, D).

    The PCA (seeded randomized SVD) is fit on :func:`fit_sample` rows (at most ``fit_rows``),
    then every row is transformed in chunks; ``read`` turns rows into the float32 matrix the
    PCA sees (e.g. rows scaled to unit length).
    """
    from sklearn.decomposition import PCA  # lazy: scikit-learn costs seconds to import

    n, d = X.shape
    picked = fit_sample(n, fit_rows, seed)
    k = min(int(n_components), len(picked), d)
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed)
    pca.fit(read(X, picked))
    out = np.empty((n, k), dtype=np.float32)
    for rows in row_chunks(n, d * 4):
        out[rows] = pca.transform(read(X, rows))
    return out

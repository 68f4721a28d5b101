"""Mahalanobis distances to the class means under one shared covariance (Lee et al. 2018).

The classes' means and the within-class covariance (scikit-learn's Ledoit-Wolf shrinkage, so
that a space wider than its well-sampled directions still has a stable inverse) are fitted on
at most ``fit_rows`` rows; the data are whitened once with the covariance's Cholesky factor, so
the squared distances of all N rows to all C means cost one (N, d) x (d, C) product.
"""

from __future__ import annotations

import numpy as np

from ogad_core._internal import row_chunks
from ogad_core.space.covariance import class_means_and_covariance

#: rows the means and covariance are fitted on (a seeded subsample above it); above it the
#: rows are also whitened in float32 (the fit stays float64): 1,000,000 unit gradient rows of
#: 650 columns read, scaled and whitened in about half the CPU of float64 (the product 2.6x
#: cheaper), each distance within about 1e-5 of its float64 value
FIT_ROWS = 100_000
#: a space wider than this is measured in the PCA of its unit rows: the shared covariance is
#: (d, d) and its Cholesky factor O(d^3) (an unprojected gradient of 100 classes x 513 would
#: be a 21 GB covariance)
MAX_WIDTH = 2048
#: components of that PCA, and the rows it is fitted on
PCA_COMPONENTS = 256
PCA_FIT_ROWS = 20_000


def class_mahalanobis(
    X: np.ndarray, labels: np.ndarray, *, fit_rows: int = FIT_ROWS, seed: int = 0
) -> np.ndarray:
    """(N,) squared Mahalanobis distance of each row of (N, d) ``X`` to the NEAREST class
    mean (classes from (N,) ``labels``; a class with fewer than two rows is left out), under
    the shared within-class covariance."""
    rows = _fit_rows(len(X), fit_rows, seed)
    yf = np.asarray(labels)[rows]
    classes, counts = np.unique(yf, return_counts=True)
    classes = classes[counts >= 2]
    if not len(classes):
        classes, yf = np.zeros(1, dtype=yf.dtype), np.zeros_like(yf)
    # in row chunks: no (N, d) float64 copy is held (memory: tests/test_memory.py)
    means, cov = class_means_and_covariance(X, rows, yf, classes)
    whiten = _whitener(cov)
    centres = means @ whiten
    dtype = np.float32 if len(X) > fit_rows else np.float64
    whiten_as = whiten.astype(dtype)
    out = np.empty(len(X), dtype=np.float64)
    for part in row_chunks(len(X), X.shape[1] * 8):
        Z = np.asarray(_read(X, part, dtype) @ whiten_as, dtype=np.float64)
        d2 = (Z**2).sum(1)[:, None] - 2 * Z @ centres.T + (centres**2).sum(1)[None, :]
        out[part] = np.maximum(d2.min(axis=1), 0.0)
    return out


def _read(X: np.ndarray | UnitRows, part: slice, dtype: type) -> np.ndarray:
    """(m, d) rows ``part`` of (N, d) ``X`` in ``dtype`` (a :class:`UnitRows` view scales
    them in it)."""
    if isinstance(X, UnitRows):
        return X.rows(part, dtype)
    return np.asarray(X[part], dtype=dtype)


class UnitRows:
    """A read-only view of an (N, d) array or memmap whose rows read back scaled to unit
    length (float64): the direction of each row, without an (N, d) copy (a million gradient
    rows are gigabytes)."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X
        self.shape = X.shape

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        return self.rows(rows, np.float64)

    def rows(self, rows: slice | np.ndarray, dtype: type) -> np.ndarray:
        """(m, d) the rows ``rows`` scaled to unit length, computed in ``dtype``."""
        x: np.ndarray = np.asarray(self.X[rows], dtype=dtype)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def unit_directions(X: np.ndarray, *, seed: int = 0) -> np.ndarray | UnitRows:
    """The rows of (N, d) ``X`` scaled to unit length, read as they are used: a
    :class:`UnitRows` view when ``d <= MAX_WIDTH``, else their (N, PCA_COMPONENTS) float32
    PCA coordinates (fitted on a seeded ``PCA_FIT_ROWS`` sample, transformed chunk by chunk)."""
    if X.shape[1] <= MAX_WIDTH:
        return UnitRows(X)
    from ogad_core.space.pca import pca_transform

    def unit(M: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        return UnitRows(M)[rows].astype(np.float32)

    return pca_transform(X, PCA_COMPONENTS, seed=seed, fit_rows=PCA_FIT_ROWS, read=unit)


def _whitener(cov: np.ndarray) -> np.ndarray:
    """(d, d) W with W W^T = cov^-1 (Z = X W has identity covariance)."""
    scale = float(np.trace(cov)) / len(cov) or 1.0
    cov = cov / scale + 1e-9 * np.eye(len(cov))
    L = np.linalg.cholesky(cov)
    return np.linalg.inv(L).T / np.sqrt(scale)


def _fit_rows(n: int, fit_rows: int, seed: int) -> np.ndarray:
    if n <= fit_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=fit_rows, replace=False))

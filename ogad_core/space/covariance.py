"""Class means and the Ledoit-Wolf shrunk within-class covariance of a tall matrix, in row
chunks: the (N, d) float64 copies a one-shot fit makes (the rows, their residuals, the squared
residuals; 0.8 GB each at 100,000 x 1,024) are never held, only (d, d) sums of about 64 MiB of
rows at a time.

The estimator is scikit-learn's ``LedoitWolf(assume_centered=True)`` on the residuals to the
class means: its shrinkage (``ledoit_wolf_shrinkage``) is a function of the sums X^T X and
(X^2)^T (X^2), which add up over row chunks. Equal to it up to the order of floating-point
summation (tests/test_memory.py compares them).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ogad_core._internal import row_chunks

__all__ = ["class_means_and_covariance"]


def class_means_and_covariance(
    X: np.ndarray, rows: np.ndarray, labels: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """((C, d) class means, (d, d) shrunk covariance of the residuals to them).

    Args:
        X: (N, d) array or memmap.
        rows: (m,) the rows of X fitted on.
        labels: (m,) the label of each of ``rows``; rows whose label is not in ``classes`` are
            left out.
        classes: (C,) sorted labels, each with at least one row.
    """
    d = X.shape[1]
    sums, counts = np.zeros((len(classes), d)), np.zeros(len(classes))
    for x, k in _class_chunks(X, rows, labels, classes):
        sums += _one_hot(k, len(classes)).T @ x
        counts += np.bincount(k, minlength=len(classes))
    means = sums / counts[:, None]
    cross, squares, n = np.zeros((d, d)), np.zeros((d, d)), 0
    for x, k in _class_chunks(X, rows, labels, classes):
        resid = x - means[k]
        cross += resid.T @ resid
        resid *= resid
        squares += resid.T @ resid
        n += len(resid)
    return means, _ledoit_wolf(cross, squares, n)


def _class_chunks(
    X: np.ndarray, rows: np.ndarray, labels: np.ndarray, classes: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per chunk of ``rows``: ((m, d) float64 rows whose label is in ``classes``, (m,) their
    class index)."""
    for part in row_chunks(len(rows), X.shape[1] * 8):
        y = np.asarray(labels[part])
        keep = np.isin(y, classes)
        x = np.asarray(X[rows[part][keep]], dtype=np.float64)
        yield x, np.searchsorted(classes, y[keep])


def _one_hot(k: np.ndarray, n_classes: int) -> np.ndarray:
    """(m, C) float64 indicator of each row's class."""
    out = np.zeros((len(k), n_classes))
    out[np.arange(len(k)), k] = 1.0
    return out


def _ledoit_wolf(cross: np.ndarray, squares: np.ndarray, n: int) -> np.ndarray:
    """(d, d) Ledoit-Wolf shrunk covariance from ``cross`` = X^T X and ``squares`` =
    (X^2)^T (X^2) of n centred rows (scikit-learn's ``ledoit_wolf_shrinkage`` and
    ``_ledoit_wolf``, written over the sums)."""
    d = len(cross)
    emp_cov = cross / n
    if d == 1:  # one feature: the result is the same whatever the shrinkage
        return emp_cov
    trace_terms = np.diag(cross) / n
    mu = np.sum(trace_terms) / d
    delta_ = np.sum(cross**2) / n**2
    beta = 1.0 / (d * n) * (np.sum(squares) / n - delta_)
    delta = (delta_ - 2.0 * mu * trace_terms.sum() + d * mu**2) / d
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk.flat[:: d + 1] += shrinkage * mu
    return shrunk

"""A z-score of a score's UPPER tail against the data's own bulk.

Distance scores are skewed: their upper tail is longer than their lower one, so a z-score
scaled by the median absolute deviation (both sides) calls far too many samples extreme (the
100k rehearsal, which planted no outliers, had 9.8% of its photos flagged at z >= 2.5). Here the
scale is read from the upper half alone, ``(q90 - median) / 1.2816`` (a normal's 90% point),
so ``z >= 2.5`` keeps to about 0.6% of the clean rows when the tail is the bulk's own
(Gaussian-like in the log of the distance), whatever the skew; the top 10% (outliers up to that
share) do not enter the scale.
"""

from __future__ import annotations

import numpy as np

#: the upper quantile the scale is read at, and a standard normal's value there
UPPER_Q, UPPER_NORMAL = 0.90, 1.2816


def upper_z(values: np.ndarray, min_scale: float = 0.0) -> np.ndarray:
    """(N,) ``(v - median) / ((q90 - median) / 1.2816)`` of (N,) values (finite ones define
    the bulk); a flat upper half falls back to the mean absolute deviation, then to 1.
    ``min_scale``: the least scale, in the values' own units (a value with an absolute meaning,
    as a probability, whose bulk may be far narrower than any difference that matters)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.zeros_like(v)
    med, upper = np.quantile(finite, [0.5, UPPER_Q])
    scale = float(upper - med) / UPPER_NORMAL
    if scale <= 1e-12:
        scale = float(np.mean(np.abs(finite - med))) or 1.0
    return (v - med) / max(scale, min_scale)


def after_the_others(scores: np.ndarray, others: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) scores with the ``others`` rows (another type's first) that reach ``threshold``
    moved just below the lowest flagged row of the rest, their order kept: still flagged,
    ranked after the flags no other type explains. Rows below the threshold unchanged."""
    above = others & (scores >= threshold)
    rest = scores[~others & (scores >= threshold)]
    if not above.any():
        return scores
    low = float(rest.min()) if rest.size else float(scores[above].max()) + 1.0
    top = float(scores[above].max())
    span = max(top - threshold, 1e-12)
    out = scores.copy()  # mapped into [threshold, threshold + (low - threshold) / 2]
    out[above] = threshold + 0.5 * (low - threshold) * (scores[above] - threshold) / span
    return out


def last_of_all(scores: np.ndarray, rows: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) scores with the ``rows`` (another type's first) moved below every other row and
    below ``threshold``, their order kept: not flagged here, ranked last (as the label type
    leaves what another type explains)."""
    rows = np.asarray(rows, dtype=bool)
    if not rows.any():
        return scores
    rest = scores[~rows]
    low = min(float(rest.min()) if rest.size else threshold, threshold) - 1.0
    moved = scores[rows]
    span = max(float(moved.max() - moved.min()), 1e-12)
    out = scores.astype(np.float64, copy=True)  # mapped into [low - 0.5, low]
    out[rows] = low - 0.5 + 0.5 * (moved - moved.min()) / span
    return out

"""How well suspicion scores find known label noise (``ogad evaluate``).

Only runs whose noise is known (``samples.is_flipped``, set by ``--noise``) can be evaluated.

Top-k metrics count the ``k`` highest scores. Where tied scores straddle the cut-off, the tied
group contributes its expected number of flipped samples (as if ties were ordered at random),
so a detector that gives every sample the same score gets precision = noise rate, whatever the
sample order. Without ties this is plain "flipped among the top k".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from ogad_core.errors import ConfigError, DataError

__all__ = ["TOP_FRACTIONS", "detection_metrics", "evaluation_table", "expected_hits_at_k"]

#: precision_at_{p}pct for these fractions of the samples.
TOP_FRACTIONS: dict[str, float] = {
    "precision_at_1pct": 0.01,
    "precision_at_5pct": 0.05,
    "precision_at_10pct": 0.10,
}

_NEEDS_NOISE = (
    "evaluation needs known noise: {why} (compute the run with --noise RATE so that "
    "samples.is_flipped records which labels were flipped)"
)


def _flags(is_flipped: Any, n: int | None = None) -> np.ndarray:
    """(N,) bool from a bool-like array; ConfigError when the noise is not usable."""
    if is_flipped is None:
        raise ConfigError(_NEEDS_NOISE.format(why="no is_flipped column"))
    raw = is_flipped.to_numpy() if isinstance(is_flipped, pd.Series) else np.asarray(is_flipped)
    series = pd.Series(raw.reshape(-1))
    if series.isna().any():
        raise ConfigError(_NEEDS_NOISE.format(why="is_flipped has missing values"))
    try:
        values = series.astype(np.float64).to_numpy()
    except (TypeError, ValueError):
        raise ConfigError(_NEEDS_NOISE.format(why="is_flipped must be true/false")) from None
    if not np.isin(values, (0.0, 1.0)).all():
        raise ConfigError(_NEEDS_NOISE.format(why="is_flipped must be true/false"))
    flags = values.astype(bool)
    if n is not None and flags.shape[0] != n:
        raise DataError(f"is_flipped has {flags.shape[0]} values but there are {n} scores")
    if flags.size == 0:
        raise ConfigError(_NEEDS_NOISE.format(why="no samples"))
    if not flags.any():
        raise ConfigError(_NEEDS_NOISE.format(why="no sample is flipped"))
    if flags.all():
        raise ConfigError(_NEEDS_NOISE.format(why="every sample is flipped"))
    return flags


def expected_hits_at_k(scores: np.ndarray, is_flipped: np.ndarray, k: int) -> float:
    """Expected number of flipped samples among the ``k`` highest of (N,) ``scores``.

    Ties at the cut-off count fractionally (random order within the tied group).
    """
    n = scores.shape[0]
    k = int(min(max(k, 0), n))
    if k == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    threshold = scores[order[k - 1]]
    above = scores > threshold
    tied = scores == threshold
    hits = float(np.count_nonzero(is_flipped & above))
    slots = k - int(np.count_nonzero(above))
    n_tied = int(np.count_nonzero(tied))
    return hits + slots * float(np.count_nonzero(is_flipped & tied)) / n_tied


def detection_metrics(scores: Any, is_flipped: Any) -> dict[str, float | int]:
    """Detection quality of (N,) suspicion ``scores`` (higher = more suspicious).

    Args:
        scores: (N,) float, higher = more suspicious.
        is_flipped: (N,) bool, True where the label was flipped by the injected noise.

    Returns:
        ``auroc``, ``average_precision`` (sklearn), ``precision_at_1pct`` / ``_5pct`` /
        ``_10pct`` (flipped fraction among the top ceil(p * N)), ``recall_at_n_flipped``
        (fraction of flipped among the top n_flipped, the paper's "detection accuracy" when
        exactly that many samples are trimmed), ``n``, ``n_flipped``, ``noise_rate``.

    Raises:
        ConfigError: ``is_flipped`` missing, all False or all True ("needs known noise").
        DataError: lengths differ or scores are not finite.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    flags = _flags(is_flipped, values.shape[0])
    if not np.isfinite(values).all():
        raise DataError("scores contain NaN or inf")
    n = int(values.shape[0])
    n_flipped = int(flags.sum())
    out: dict[str, float | int] = {
        "auroc": float(roc_auc_score(flags, values)),
        "average_precision": float(average_precision_score(flags, values)),
    }
    for key, fraction in TOP_FRACTIONS.items():
        k = max(1, math.ceil(round(fraction * n, 9)))
        out[key] = expected_hits_at_k(values, flags, k) / k
    out["recall_at_n_flipped"] = expected_hits_at_k(values, flags, n_flipped) / n_flipped
    out["n"] = n
    out["n_flipped"] = n_flipped
    out["noise_rate"] = n_flipped / n
    return out


def evaluation_table(scores_df: pd.DataFrame, is_flipped: Any) -> pd.DataFrame:
    """One row of ``detection_metrics`` per detector D with a ``D_score`` column.

    Args:
        scores_df: the scores table (``sample_id``, ``D_score``, ``D_rank``...).
        is_flipped: (N,) bool aligned with the rows of ``scores_df``; or a DataFrame with
            ``sample_id`` and ``is_flipped`` (the samples table), matched on sample_id.

    Returns:
        DataFrame: ``detector``, then the metrics, in the column order of ``scores_df``.
    """
    detectors = [c[: -len("_score")] for c in scores_df.columns if c.endswith("_score")]
    if not detectors:
        raise DataError("the scores table has no D_score column")
    if isinstance(is_flipped, pd.DataFrame):
        if "is_flipped" not in is_flipped.columns:
            raise ConfigError(_NEEDS_NOISE.format(why="the samples table has no is_flipped"))
        if "sample_id" not in is_flipped.columns or "sample_id" not in scores_df.columns:
            raise DataError("matching is_flipped to scores needs sample_id in both tables")
        lookup = is_flipped.set_index("sample_id")["is_flipped"]
        missing = ~scores_df["sample_id"].isin(lookup.index)
        if missing.any():
            first = scores_df["sample_id"][missing].iloc[0]
            raise DataError(f"sample_id {first} of the scores table is not in the samples table")
        is_flipped = lookup.loc[scores_df["sample_id"].to_numpy()].to_numpy()
    flags = _flags(is_flipped, len(scores_df))
    rows = []
    for name in detectors:
        rows.append({"detector": name, **detection_metrics(scores_df[f"{name}_score"], flags)})
    return pd.DataFrame(rows)

"""Trimming plans: which samples each retraining keeps. Pure and torch-free."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ogad_core.errors import ConfigError
from ogad_core.options import DEFAULT_TRIM_PERCENTS

__all__ = ["DEFAULT_TRIM_PERCENTS", "TrimPlan", "n_to_trim", "trim_plans", "validate_trims"]

#: the k of "trim the top k%" when ``ogad evaluate --retrain`` is given no --trim


def n_to_trim(percent: float, n: int) -> int:
    """How many of ``n`` samples a trim of ``percent`` % removes (rounded half up)."""
    return int(math.floor(percent * n / 100.0 + 0.5 + 1e-9))


@dataclass(frozen=True)
class TrimPlan:
    """One retraining: which samples to keep and which labels to train on.

    Attributes:
        method: a detector name, ``random``, ``none``, ``oracle_drop_flipped`` or
            ``oracle_clean_labels``.
        trim_percent: the k of "trim the top k%" (None for the references).
        keep: (N,) bool, True for the samples trained on.
        clean_labels: train on the true labels instead of the given ones.
    """

    method: str
    trim_percent: float | None
    keep: np.ndarray
    clean_labels: bool = False

    def key(self) -> str:
        """Identifies the training set: same key (and seed) = same model."""
        h = hashlib.sha256(np.packbits(self.keep).tobytes())
        h.update(b"clean" if self.clean_labels else b"given")
        return h.hexdigest()[:16]


def validate_trims(trim_percents: Sequence[float]) -> list[float]:
    """The distinct trim percentages as floats; ConfigError outside (0, 100) or when empty."""
    out: list[float] = []
    for value in trim_percents:
        k = float(value)
        if math.isnan(k) or not 0 < k < 100:
            raise ConfigError(
                f"trim percentages must be between 0 and 100, got {k:g}", param="trim"
            )
        if k not in out:
            out.append(k)
    if not out:
        raise ConfigError("trim needs at least one percentage", param="trim")
    return out


def trim_plans(
    ranks: pd.DataFrame,
    is_flipped: np.ndarray,
    *,
    methods: Sequence[str],
    trim_percents: Sequence[float],
    seed: int,
) -> list[TrimPlan]:
    """Every retraining of one seed: the references, then per k random and each method.

    Args:
        ranks: one ``D_rank`` column (1 = most suspicious) per method, rows in sample order.
        is_flipped: (N,) bool, the known noise.
        methods: detector names with a ``D_rank`` column in ``ranks``.
        trim_percents: the k values (percent of N).
        seed: seeds the random trimming.
    """
    flags = np.asarray(is_flipped, dtype=bool)
    n = flags.shape[0]
    everyone = np.ones(n, dtype=bool)
    plans = [
        TrimPlan("none", None, everyone),
        TrimPlan("oracle_drop_flipped", None, ~flags),
        TrimPlan("oracle_clean_labels", None, everyone, clean_labels=True),
    ]
    for k in validate_trims(trim_percents):
        n_trim = n_to_trim(k, n)
        rng = np.random.default_rng([seed, int(round(k * 1000))])
        keep = everyone.copy()
        keep[rng.choice(n, size=n_trim, replace=False)] = False
        plans.append(TrimPlan("random", k, keep))
        for name in methods:
            rank = ranks[f"{name}_rank"].to_numpy()
            plans.append(TrimPlan(name, k, rank > n_trim))
    return plans

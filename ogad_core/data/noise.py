"""Label noise for evaluation: flip a seeded random subset of the labels and record which."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ogad_core.data.loaders import LoadedData
from ogad_core.errors import ConfigError, DataError


def noise_count(rate: float, n: int) -> int:
    """Number of labels to flip: ``rate`` is a fraction in [0, 1) or, when >= 1, a count."""
    if rate < 0 or math.isnan(rate):
        raise ConfigError(f"noise must be >= 0, got {rate}", param="noise")
    if math.isinf(rate):
        raise ConfigError(f"noise must be a rate < 1 or a whole count, got {rate}", param="noise")
    if rate >= 1:
        if rate != int(rate):
            raise ConfigError(
                f"noise {rate}: a count must be a whole number (or use a rate < 1)", param="noise"
            )
        count = int(rate)
    else:
        count = int(round(rate * n))
    if count > n:
        raise ConfigError(
            f"noise {rate} asks for {count} flips but there are only {n} samples", param="noise"
        )
    return count


def flip_labels(
    labels: np.ndarray, n_classes: int, *, rate: float, kind: str = "symmetric", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Flip the labels of a seeded random subset.

    ``symmetric``: each chosen sample gets a different class drawn uniformly;
    ``asymmetric``: class c becomes (c + 1) mod C (a fixed confusion, as in pair-flip noise).

    Args:
        labels: (N,) int clean labels.
        rate: fraction of samples to flip, or a count when >= 1.
    Returns:
        noisy (N,) int64 labels and is_flipped (N,) bool.
    """
    if kind not in ("symmetric", "asymmetric"):
        raise ConfigError(
            f"noise_kind must be symmetric or asymmetric, got {kind!r}", param="noise_kind"
        )
    if n_classes < 2:
        raise DataError("label noise needs at least two classes")
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    count = noise_count(rate, n)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n, size=count, replace=False)
    noisy = labels.copy()
    if kind == "symmetric":
        offsets = rng.integers(1, n_classes, size=count)
        noisy[chosen] = (labels[chosen] + offsets) % n_classes
    else:
        noisy[chosen] = (labels[chosen] + 1) % n_classes
    is_flipped = np.zeros(n, dtype=bool)
    is_flipped[chosen] = True
    return noisy, is_flipped


def with_noise(data: LoadedData, *, rate: float, kind: str, seed: int) -> LoadedData:
    """``data`` with label noise injected into its train split (records ``is_flipped``)."""
    if rate == 0:
        return data
    noisy, flipped = flip_labels(data.train.labels, data.n_classes, rate=rate, kind=kind, seed=seed)
    return replace(
        data,
        train=replace(data.train, labels=noisy),
        is_flipped=flipped,
        clean_labels=data.train.labels,
        noise={"rate": rate, "kind": kind, "seed": seed, "n_flipped": int(flipped.sum())},
    )

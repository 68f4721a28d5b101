"""The baselines of ``ogad evaluate --baselines``, added to scores.parquet as detector columns.

* cleanlab: ``cleanlab.rank.get_label_quality_scores`` (self-confidence) and
  ``cleanlab.filter.find_label_issues`` on K-fold cross-validated, out-of-sample predicted
  probabilities; each fold retrains the run's model recipe from scratch (cleanlab's standard
  use). Score = 1 - label quality. Its wall time includes the K trainings.
* TracIn self-influence over the run's saved checkpoints, restricted to the stored gradients:
  ``sum_k lr * ||g_k||^2`` (``checkpoints/`` and ``gradients.npy``) -- what Captum's
  ``TracInCP.self_influence`` computes with ``final_fc_layer`` set to the head. With one
  checkpoint it ranks as the L2 detector.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import log, one_line, row_chunks, write_table_atomic
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.evaluation.context import (
    RunContext,
    predict_proba,
    require_trainable,
    train_subset,
)
from ogad_core.evaluation.schema import CleanlabInfo, TracinInfo
from ogad_core.options import DEFAULT_FOLDS
from ogad_core.run.manifest import Manifest
from ogad_core.run.rundir import RunDir

__all__ = [
    "DEFAULT_FOLDS",
    "checkpoint_gradient_paths",
    "cleanlab_baseline",
    "column_digest",
    "import_cleanlab",
    "merge_scores",
    "tracin_baseline",
    "tracin_self_influence",
]

#: cross-validation folds of the cleanlab baseline


def column_digest(scores: pd.DataFrame, name: str) -> str | None:
    """sha256 prefix of ``name``'s score column (None when it is not scored)."""
    col = f"{name}_score"
    if col not in scores.columns:
        return None
    return hashlib.sha256(scores[col].to_numpy(dtype=np.float64).tobytes()).hexdigest()[:16]


# ---- TracIn ---------------------------------------------------------------------------------


def checkpoint_gradient_paths(rd: RunDir, manifest: Manifest) -> list[Path]:
    """The stored gradients of each checkpoint, in training order (the last = gradients.npy)."""
    k = int(manifest.dims.get("n_checkpoints", 1))
    paths = [rd.gradients_path_at(i, k) for i in range(k)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise RunDirError(
            f"{rd.path} lacks the checkpoint gradients {missing[0].name}; "
            "run `ogad compute` again to finish it"
        )
    return paths


def tracin_self_influence(paths: Sequence[Path], lr: float | Sequence[float]) -> np.ndarray:
    """TracIn self-influence ``sum_k lr_k * ||g_k||^2`` of each sample.

    Args:
        paths: K ``.npy`` files of (N, D) float32 per-sample gradients, one per checkpoint.
        lr: the step size at each checkpoint (one value for all, or K values).
    Returns:
        (N,) float64.
    """
    lrs = (
        [float(lr)] * len(paths)
        if isinstance(lr, int | float | np.number)
        else [float(v) for v in lr]
    )
    if len(lrs) != len(paths):
        raise ConfigError(f"TracIn: {len(paths)} checkpoints but {len(lrs)} learning rates")
    total: np.ndarray | None = None
    for path, step in zip(paths, lrs, strict=True):
        g = np.load(path, mmap_mode="r")
        if total is None:
            total = np.zeros(g.shape[0], dtype=np.float64)
        elif g.shape[0] != total.shape[0]:
            raise RunDirError(f"{path} has {g.shape[0]} rows, expected {total.shape[0]}")
        for rows in row_chunks(g.shape[0], 8 * int(np.prod(g.shape[1:], dtype=np.int64))):
            block = np.asarray(g[rows], dtype=np.float64)
            total[rows] += step * np.einsum("ij,ij->i", block, block)
    if total is None:
        raise ConfigError("TracIn needs at least one checkpoint")
    return total


def tracin_baseline(rd: RunDir, manifest: Manifest, lr: float) -> tuple[np.ndarray, TracinInfo]:
    """(N,) TracIn self-influence of the run's samples and how it was computed."""
    paths = checkpoint_gradient_paths(rd, manifest)
    t0 = time.perf_counter()
    scores = tracin_self_influence(paths, lr)
    seconds = time.perf_counter() - t0
    notes = []
    if len(paths) == 1:
        notes.append(
            "one checkpoint: TracIn ranks exactly as the L2 detector (compute with "
            "--checkpoints K for more)"
        )
    proj_dim = manifest.dims.get("proj_dim")
    if proj_dim:
        notes.append(f"gradients projected to {proj_dim} dims: the norms are JL estimates")
    method = (
        "TracIn self-influence (TracInCP restricted to the stored gradients, i.e. the "
        f"{manifest.params or 'last'!r} parameters): sum over the {len(paths)} "
        f"checkpoints of lr * ||g_k||^2 with lr = {lr:g} (Adam's step size, constant)"
    )
    info = TracinInfo(
        method=method, checkpoints=len(paths), lr=lr, seconds_sum=round(seconds, 3), notes=notes
    )
    return scores, info


# ---- cleanlab -------------------------------------------------------------------------------

CleanlabFns = tuple[str, Callable[..., Any], Callable[..., Any]]


def import_cleanlab() -> CleanlabFns:
    """(version, find_label_issues, get_label_quality_scores); ConfigError when missing."""
    try:
        import cleanlab
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        raise ConfigError(
            "the cleanlab baseline needs cleanlab: pip install 'ogad[eval]' (or pip install "
            "cleanlab)"
        ) from None
    return str(cleanlab.__version__), find_label_issues, get_label_quality_scores


def _fold_count(labels: np.ndarray, n_classes: int, folds: int) -> int:
    """Folds to use: ``folds``, fewer when a class has fewer samples; ConfigError below 2."""
    counts = np.bincount(labels, minlength=n_classes)
    smallest = int(counts[counts > 0].min())
    k = min(folds, smallest)
    if k < 2:
        raise ConfigError(
            "the cleanlab baseline needs at least 2 samples of every given class "
            "for cross-validation"
        )
    if k < folds:
        log.info(f"evaluate: cleanlab: {k}-fold CV (a class has only {smallest} samples)")
    return k


def cv_pred_probs(ctx: RunContext, labels: np.ndarray, k: int) -> np.ndarray:
    """(N, C) out-of-sample softmax of a stratified ``k``-fold cross-validation."""
    from sklearn.model_selection import StratifiedKFold

    pred_probs = np.zeros((ctx.n, ctx.data.n_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=ctx.config.seed)
    for i, (fit_idx, held_idx) in enumerate(splitter.split(np.zeros(ctx.n), labels)):
        t_fold = time.perf_counter()
        model = train_subset(ctx, fit_idx, labels, ctx.config.seed + i)
        pred_probs[held_idx] = predict_proba(ctx, model, held_idx)
        log.info(
            f"evaluate: cleanlab CV fold {i + 1}/{k} trained on {len(fit_idx)} "
            f"({time.perf_counter() - t_fold:.1f} s)"
        )
    return pred_probs


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def cleanlab_baseline(ctx: RunContext, *, folds: int) -> tuple[np.ndarray, CleanlabInfo]:
    """cleanlab on K-fold out-of-sample predicted probabilities.

    Returns:
        (N,) float64 suspicion (1 - self-confidence label quality) and how it was computed.
    """
    version, find_label_issues, get_label_quality_scores = import_cleanlab()
    require_trainable(ctx, "the cleanlab baseline (cross-validation)")
    labels = ctx.data.train.labels.astype(np.int64)
    k = _fold_count(labels, ctx.data.n_classes, folds)
    t0 = time.perf_counter()
    pred_probs = cv_pred_probs(ctx, labels, k)
    cv_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        quality = get_label_quality_scores(labels, pred_probs, method="self_confidence")
        issues = find_label_issues(labels, pred_probs, filter_by="prune_by_noise_rate")
    except Exception as err:  # cleanlab raises assorted types on degenerate inputs
        raise ConfigError(f"cleanlab failed on this run: {one_line(err)}") from None
    cl_seconds = time.perf_counter() - t1
    issues = np.asarray(issues, dtype=bool)
    hits = int((issues & ctx.is_flipped).sum())
    info = CleanlabInfo(
        method=(
            f"cleanlab {version}: rank.get_label_quality_scores(method='self_confidence') and "
            f"filter.find_label_issues(filter_by='prune_by_noise_rate') on {k}-fold "
            "stratified cross-validated out-of-sample predicted probabilities; each fold "
            "retrains the run's model recipe from scratch; score = 1 - label quality"
        ),
        folds=k,
        seconds_cv_training=round(cv_seconds, 3),
        seconds_cleanlab=round(cl_seconds, 3),
        seconds=round(cv_seconds + cl_seconds, 3),
        cv_accuracy_on_given_labels=round(float((pred_probs.argmax(1) == labels).mean()), 6),
        n_label_issues=int(issues.sum()),
        label_issues_precision=_ratio(hits, int(issues.sum())),
        label_issues_recall=_ratio(hits, int(ctx.is_flipped.sum())),
    )
    return 1.0 - np.asarray(quality, dtype=np.float64), info


# ---- scores.parquet -------------------------------------------------------------------------


def merge_scores(rd: RunDir, manifest: Manifest, new: dict[str, np.ndarray]) -> pd.DataFrame:
    """Add (or replace) ``D_score`` / ``D_rank`` columns of scores.parquet, keep the others.

    Updates the manifest's detector list (on disk and in ``manifest``); returns the new table.
    """
    from ogad_core.scoring.detectors import rank_scores

    table = rd.read_scores()
    ids = table["sample_id"].to_numpy()
    for name, scores in new.items():
        table[f"{name}_score"] = np.asarray(scores, dtype=np.float64)
        table[f"{name}_rank"] = rank_scores(np.asarray(scores, dtype=np.float64), ids)
    write_table_atomic(table, rd.scores_path)
    latest = rd.load_manifest()  # the freshest copy: only the detector list changes
    latest.detectors = [c[: -len("_score")] for c in table.columns if c.endswith("_score")]
    rd.save_manifest(latest)
    manifest.detectors = list(latest.detectors)
    return table

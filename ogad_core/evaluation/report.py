"""Evaluation of a run against its known label noise: ``ogad evaluate --baselines --retrain``.

Three parts, one JSON-able report (also written to ``RUN_DIR/evaluation.json`` for the
dashboard):

1. **Detection**: AUROC, average precision, precision@1/5/10% and recall at n_flipped of every
   scored detector (``metrics.evaluation_table``), with each method's wall time.
2. **Baselines** (``baselines=True``), added to ``scores.parquet`` as ``cleanlab_*`` and
   ``tracin_*`` columns (higher = more suspicious):

   * cleanlab: ``cleanlab.rank.get_label_quality_scores`` (self-confidence) and
     ``cleanlab.filter.find_label_issues`` on K-fold cross-validated, out-of-sample predicted
     probabilities; each fold retrains the run's model recipe from scratch (cleanlab's standard
     use). Score = 1 - label quality. Its wall time includes the K trainings.
   * TracIn self-influence over the run's saved checkpoints, restricted to the last layer:
     ``sum_k lr * ||g_k||^2`` with the stored per-checkpoint gradients (``checkpoints/`` and
     ``gradients.npy``) — what Captum's ``TracInCP.self_influence`` computes with
     ``final_fc_layer`` set to the head. With one checkpoint it ranks as the L2 detector.

3. **Retraining** (``retrain=True``): for each method, trim its top k% (by rank), retrain the
   run's model from scratch on the rest with the same recipe, and report the final-epoch
   accuracy on the held-out test split (never best-on-test), next to no trimming, random trimming
   of the same size, and two oracles: ``oracle_drop_flipped`` (drop exactly the flipped samples)
   and ``oracle_clean_labels`` (train on the true labels of all samples). Mean and sample std
   over ``seeds`` training seeds; training is deterministic, so a trimmed set identical to one
   already trained (same seed) is not trained twice.

Cost: every retrained model costs one training of the run. Measured on 2 shared CPU cores with
one torch thread: mnist5k 28-56 s per model, digits/moons 0.5-20 s (the spread is the machine's
load). The default sweep trains up to ``seeds * (3 + len(trim) * (1 + n_methods))`` models —
mnist5k with 4 trims, 8 methods and 3 seeds: 3 * (3 + 4 * 9) = 117 models, about 1-2 hours — so
pick fewer trims, methods (``detectors=``, ``ogad evaluate --detector``) or seeds. cleanlab's
K-fold CV costs about K - 1 trainings.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import utc_now, write_json_atomic, write_table_atomic
from ogad_core.errors import ConfigError, OgadError, RunDirError
from ogad_core.run.rundir import RunDir

__all__ = [
    "DEFAULT_TRIM_PERCENTS",
    "EVALUATION_JSON",
    "TrimPlan",
    "evaluate_run",
    "format_report",
    "n_to_trim",
    "ratio_same_load",
    "tracin_self_influence",
    "trim_plans",
]

Log = Callable[[str], None]
REPORT_VERSION = 1
EVALUATION_JSON = "evaluation.json"
DEFAULT_TRIM_PERCENTS = (2.5, 5.0, 10.0, 12.5)
DEFAULT_FOLDS = 5
#: methods that do not score outliers of the gradient embeddings
NON_GRADIENT = frozenset({"loss", "selfconf", "cleanlab", "tracin"})
REFERENCES = ("none", "oracle_drop_flipped", "oracle_clean_labels")
REFERENCE_LABELS = {
    "none": "no trimming",
    "oracle_drop_flipped": "oracle: drop exactly the flipped samples",
    "oracle_clean_labels": "oracle: all samples with their true labels",
    "random": "random trimming (same size)",
}
GRADIENT_TIMING_MAX_ROWS = 20_000
_CHUNK_ROWS = 8192


def _stderr(msg: str) -> None:
    from ogad_core._internal import log

    log.info(msg)


def _r(value: float | None, digits: int = 6) -> float | None:
    """JSON-safe rounding: None for missing or non-finite values."""
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), digits)


# ---- trimming plans (pure, torch-free) -----------------------------------------------------


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


def _validate_trims(trim_percents: Sequence[float]) -> list[float]:
    out = []
    for k in trim_percents:
        k = float(k)
        if not 0 < k < 100 or math.isnan(k):
            raise ConfigError(f"--trim percentages must be between 0 and 100, got {k:g}")
        if k not in out:
            out.append(k)
    if not out:
        raise ConfigError("--trim needs at least one percentage")
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
    for k in _validate_trims(trim_percents):
        n_trim = n_to_trim(k, n)
        rng = np.random.default_rng([seed, int(round(k * 1000))])
        keep = everyone.copy()
        keep[rng.choice(n, size=n_trim, replace=False)] = False
        plans.append(TrimPlan("random", k, keep))
        for name in methods:
            rank = ranks[f"{name}_rank"].to_numpy()
            plans.append(TrimPlan(name, k, rank > n_trim))
    return plans


# ---- TracIn ---------------------------------------------------------------------------------


def checkpoint_gradient_paths(rd: RunDir, manifest: dict[str, Any]) -> list[Path]:
    """The stored gradients of each checkpoint, in training order (the last = gradients.npy)."""
    k = int(manifest.get("dims", {}).get("n_checkpoints", 1))
    paths = [rd.path / "checkpoints" / f"gradients_{i}.npy" for i in range(k - 1)]
    paths.append(rd.gradients_path)
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
    lrs = [float(lr)] * len(paths) if np.isscalar(lr) else [float(v) for v in lr]
    if len(lrs) != len(paths):
        raise ConfigError(f"TracIn: {len(paths)} checkpoints but {len(lrs)} learning rates")
    total = None
    for path, step in zip(paths, lrs, strict=True):
        g = np.load(path, mmap_mode="r")
        if total is None:
            total = np.zeros(g.shape[0], dtype=np.float64)
        elif g.shape[0] != total.shape[0]:
            raise RunDirError(f"{path} has {g.shape[0]} rows, expected {total.shape[0]}")
        for start in range(0, g.shape[0], _CHUNK_ROWS):
            block = np.asarray(g[start : start + _CHUNK_ROWS], dtype=np.float64)
            total[start : start + block.shape[0]] += step * np.einsum("ij,ij->i", block, block)
    assert total is not None
    return total


# ---- the run's data, model and recipe -------------------------------------------------------


@dataclass
class _Context:
    rd: RunDir
    manifest: dict[str, Any]
    config: Any  # ComputeConfig
    data: Any  # LoadedData
    samples: pd.DataFrame
    is_flipped: np.ndarray
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    recipe: Any  # TrainRecipe
    device: Any
    log: Log

    @property
    def n(self) -> int:
        return int(self.is_flipped.shape[0])


def _is_flipped(samples: pd.DataFrame, where: Path) -> np.ndarray:
    if "is_flipped" not in samples.columns:
        raise ConfigError(
            f"{where} has no known noise (is_flipped); compute it with --noise RATE to evaluate"
        )
    flags = samples["is_flipped"].to_numpy(dtype=bool)
    if not flags.any():
        raise ConfigError(f"{where}: no label was flipped; compute it with --noise RATE > 0")
    return flags


def _load_context(rd: RunDir, manifest: dict[str, Any], *, need_test: bool, log: Log) -> _Context:
    """Re-load the run's data (checked against its fingerprint), inputs and training recipe."""
    import torch

    from ogad_core import pipeline
    from ogad_core.engine.models import resolve_device
    from ogad_core.options import ComputeConfig, fingerprint

    config = ComputeConfig.from_dict(manifest["config"])
    samples = rd.read_samples()
    flags = _is_flipped(samples, rd.path)
    if need_test and not manifest.get("data", {}).get("n_test"):
        raise ConfigError(
            f"{rd.path} has no held-out test split ({config.data}); --retrain needs one "
            "(use a sample set: mnist5k, digits, moons, rotten-tomatoes)"
        )
    data = pipeline.load_run_data(config, rd)
    data_fp = fingerprint(data.fingerprint(), data.noise)
    if data_fp != manifest.get("steps", {}).get("data", {}).get("fingerprint"):
        raise RunDirError(f"the data behind {config.data} changed since {rd.path} was computed")
    if data.is_flipped is None or not np.array_equal(data.is_flipped, flags):
        raise RunDirError(f"{rd.path}: samples.parquet's is_flipped does not match the data")
    if need_test and data.test is None:
        raise ConfigError(f"{config.data} has no held-out test split; --retrain needs one")
    device = resolve_device(config.device)
    inputs = pipeline.model_inputs(config, data, rd, device, False)
    x_train, x_test = inputs.x_train, inputs.x_test
    recipe = pipeline.model_recipe(config, data.kind)
    recorded = manifest.get("model", {}).get("recipe")
    if recorded and recorded != str(recipe):
        log(f"evaluate: note: the run was trained with {recorded}; retraining uses {recipe}")
    return _Context(
        rd=rd,
        manifest=manifest,
        config=config,
        data=data,
        samples=samples,
        is_flipped=flags,
        x_train=x_train,
        y_train=torch.as_tensor(data.train.labels),
        x_test=x_test,
        y_test=None if data.test is None else torch.as_tensor(data.test.labels),
        recipe=recipe,
        device=device,
        log=log,
    )


def _require_trainable(ctx: _Context, what: str) -> None:
    if ctx.config.checkpoint:
        raise ConfigError(
            f"{what} retrains the model from scratch, but this run's model came from "
            f"--checkpoint {ctx.config.checkpoint} (no training recipe to repeat)"
        )


def _new_model(ctx: _Context, seed: int):
    """A freshly initialised model of the run (torch seeded as ``ogad compute`` seeds it)."""
    import torch

    from ogad_core.pipeline import build_model

    torch.manual_seed(seed)
    config = ctx.config if seed == ctx.config.seed else replace(ctx.config, seed=seed)
    shape = tuple(ctx.x_train.shape[1:])
    return build_model(config, ctx.data.kind, shape, ctx.data.n_classes, train_inputs=ctx.x_train)


def _train(ctx: _Context, idx: np.ndarray, labels: np.ndarray, seed: int):
    """Train a fresh model on rows ``idx`` with ``labels[idx]``; returns the final model."""
    import torch

    from ogad_core.engine.train import train_model

    model = _new_model(ctx, seed)
    rows = torch.as_tensor(idx, dtype=torch.long)
    train_model(
        model,
        ctx.x_train[rows],
        torch.as_tensor(labels[idx]),
        recipe=ctx.recipe,
        seed=seed,
        device=ctx.device,
        n_checkpoints=1,
        progress=False,
    )
    return model


def _predict_proba(ctx: _Context, model, x) -> np.ndarray:
    """(n, C) float64 softmax probabilities in eval mode."""
    import torch

    model.to(ctx.device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], ctx.config.batch_size):
            logits = model(x[start : start + ctx.config.batch_size].to(ctx.device))
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out).double().numpy()


# ---- baselines ------------------------------------------------------------------------------


def _import_cleanlab():
    try:
        import cleanlab
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        raise ConfigError(
            "the cleanlab baseline needs cleanlab: pip install 'ogad[eval]' (or pip install "
            "cleanlab)"
        ) from None
    return cleanlab.__version__, find_label_issues, get_label_quality_scores


def cleanlab_baseline(ctx: _Context, *, folds: int) -> tuple[np.ndarray, dict[str, Any]]:
    """cleanlab on K-fold out-of-sample predicted probabilities.

    Returns:
        (N,) float64 suspicion (1 - self-confidence label quality) and an info dict.
    """
    from sklearn.model_selection import StratifiedKFold

    version, find_label_issues, get_label_quality_scores = _import_cleanlab()
    _require_trainable(ctx, "the cleanlab baseline (cross-validation)")
    labels = ctx.data.train.labels.astype(np.int64)
    counts = np.bincount(labels, minlength=ctx.data.n_classes)
    smallest = int(counts[counts > 0].min())
    k = min(folds, smallest)
    if k < 2:
        raise ConfigError(
            "the cleanlab baseline needs at least 2 samples of every given class "
            "for cross-validation"
        )
    if k < folds:
        ctx.log(f"evaluate: cleanlab: {k}-fold CV (a class has only {smallest} samples)")
    pred_probs = np.zeros((ctx.n, ctx.data.n_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=ctx.config.seed)
    t0 = time.perf_counter()
    for i, (fit_idx, held_idx) in enumerate(splitter.split(np.zeros(ctx.n), labels)):
        t_fold = time.perf_counter()
        model = _train(ctx, fit_idx, labels, ctx.config.seed + i)
        pred_probs[held_idx] = _predict_proba(ctx, model, ctx.x_train[held_idx])
        ctx.log(
            f"evaluate: cleanlab CV fold {i + 1}/{k} trained on {len(fit_idx)} "
            f"({time.perf_counter() - t_fold:.1f} s)"
        )
    cv_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        quality = get_label_quality_scores(labels, pred_probs, method="self_confidence")
        issues = find_label_issues(labels, pred_probs, filter_by="prune_by_noise_rate")
    except Exception as err:  # cleanlab raises assorted types on degenerate inputs
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"cleanlab failed on this run: {msg}") from None
    cl_seconds = time.perf_counter() - t1
    issues = np.asarray(issues, dtype=bool)
    n_issues = int(issues.sum())
    hits = int((issues & ctx.is_flipped).sum())
    info = {
        "method": (
            f"cleanlab {version}: rank.get_label_quality_scores(method='self_confidence') and "
            f"filter.find_label_issues(filter_by='prune_by_noise_rate') on {k}-fold "
            "stratified cross-validated out-of-sample predicted probabilities; each fold "
            "retrains the run's model recipe from scratch; score = 1 - label quality"
        ),
        "folds": k,
        "seconds_cv_training": _r(cv_seconds, 3),
        "seconds_cleanlab": _r(cl_seconds, 3),
        "seconds": _r(cv_seconds + cl_seconds, 3),
        "cv_accuracy_on_given_labels": _r(float((pred_probs.argmax(1) == labels).mean())),
        "n_label_issues": n_issues,
        "label_issues_precision": _r(hits / n_issues) if n_issues else None,
        "label_issues_recall": _r(hits / int(ctx.is_flipped.sum())),
    }
    return 1.0 - np.asarray(quality, dtype=np.float64), info


def _tracin_baseline(rd: RunDir, manifest: dict[str, Any], lr: float) -> tuple[np.ndarray, dict]:
    paths = checkpoint_gradient_paths(rd, manifest)
    t0 = time.perf_counter()
    scores = tracin_self_influence(paths, lr)
    seconds = time.perf_counter() - t0
    dims = manifest.get("dims", {})
    notes = []
    if len(paths) == 1:
        notes.append(
            "one checkpoint: TracIn ranks exactly as the L2 detector (compute with "
            "--checkpoints K for more)"
        )
    if dims.get("proj_dim"):
        notes.append(f"gradients projected to {dims['proj_dim']} dims: the norms are JL estimates")
    info = {
        "method": (
            "TracIn self-influence (TracInCP restricted to the stored gradients, i.e. the "
            f"{manifest.get('params', 'last')!r} parameters): sum over the {len(paths)} "
            f"checkpoints of lr * ||g_k||^2 with lr = {lr:g} (Adam's step size, constant)"
        ),
        "checkpoints": len(paths),
        "lr": lr,
        "seconds_sum": _r(seconds, 3),
        "notes": notes,
    }
    return scores, info


def _merge_scores(rd: RunDir, manifest: dict[str, Any], new: dict[str, np.ndarray]) -> None:
    """Add (or replace) ``D_score`` / ``D_rank`` columns of scores.parquet, keep the others."""
    from ogad_core.scoring.detectors import rank_scores

    table = rd.read_scores()
    ids = table["sample_id"].to_numpy()
    for name, scores in new.items():
        table[f"{name}_score"] = np.asarray(scores, dtype=np.float64)
        table[f"{name}_rank"] = rank_scores(np.asarray(scores, dtype=np.float64), ids)
    write_table_atomic(table, rd.scores_path)
    latest = rd.read_manifest()  # the freshest copy: only the detector list changes
    latest["detectors"] = [c[: -len("_score")] for c in table.columns if c.endswith("_score")]
    rd.write_manifest(latest)
    manifest["detectors"] = latest["detectors"]


# ---- timing ---------------------------------------------------------------------------------


def _time_detectors(
    rd: RunDir, manifest: dict[str, Any], samples: pd.DataFrame, names: Sequence[str], log: Log
) -> dict[str, float | None]:
    """Re-fit each scored detector (same settings) and time it; None when it cannot be re-run."""
    from ogad_core.pipeline import load_embeddings
    from ogad_core.run.manifest import Manifest
    from ogad_core.scoring.detectors import suspicion_scores

    scoring = manifest.get("scoring", {})
    out: dict[str, float | None] = {}
    cache: dict[str, np.ndarray] = {}
    for name in names:
        if name in ("cleanlab", "tracin"):
            continue
        ckpt = name.endswith("_ckpt")
        base = name[: -len("_ckpt")] if ckpt else name
        embedding = "checkpoints" if ckpt else "final"
        try:
            if embedding not in cache:
                cache[embedding] = load_embeddings(rd, Manifest.from_json(manifest), embedding)
            t0 = time.perf_counter()
            suspicion_scores(
                base,
                cache[embedding],
                samples,
                per_class=bool(scoring.get("per_class", False)),
                seed=int(scoring.get("seed", 0)),
            )
            out[name] = time.perf_counter() - t0
        except (OgadError, ImportError, OSError) as err:
            log(f"evaluate: cannot re-time detector {name}: {str(err).splitlines()[0]}")
            out[name] = None
    return out


def _time_gradients(ctx: _Context) -> tuple[float, str]:
    """Seconds to extract the final model's gradients (re-timed on up to 20,000 rows)."""
    import torch
    from torch.utils.data import TensorDataset

    from ogad_core.engine.gradients import compute_gradients

    model = _new_model(ctx, ctx.config.seed)
    final = ctx.rd.path / "model" / "final.pt"
    if not ctx.config.checkpoint:
        if not final.is_file():
            raise RunDirError(f"{ctx.rd.path} has no model/final.pt; run `ogad compute` again")
        model.load_state_dict(torch.load(final, map_location="cpu", weights_only=True))
    n = min(ctx.n, GRADIENT_TIMING_MAX_ROWS)
    ds = TensorDataset(ctx.x_train[:n], ctx.y_train[:n])
    params = ctx.manifest.get("params", "last")
    t0 = time.perf_counter()
    g = compute_gradients(
        model,
        ds,
        params,
        batch_size=ctx.config.batch_size,
        device=str(ctx.device),
        proj_dim=ctx.config.proj_dim,
        seed=ctx.config.seed,
        progress=False,
    )
    seconds = (time.perf_counter() - t0) * ctx.n / n
    stored = np.load(ctx.rd.gradients_path, mmap_mode="r")[:n]
    same = bool(np.allclose(g, stored, rtol=1e-3, atol=1e-5))
    source = f"re-timed on {n} rows" + (f", scaled to {ctx.n}" if n < ctx.n else "")
    if not same:
        source += " (note: differ from the stored gradients)"
    return seconds, source


# ---- retraining -----------------------------------------------------------------------------


def _summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "accuracy": [_r(v) for v in arr],
        "mean": _r(arr.mean()),
        "std": _r(arr.std(ddof=1)) if arr.size > 1 else None,
    }


def _retrain(
    ctx: _Context,
    scores: pd.DataFrame,
    methods: list[str],
    trim_percents: list[float],
    seeds: list[int],
) -> dict[str, Any]:
    """Train every plan of every seed; returns the report's ``retrain`` section."""
    from ogad_core.engine.train import accuracy

    _require_trainable(ctx, "--retrain")
    labels_given = ctx.data.train.labels.astype(np.int64)
    labels_clean = ctx.data.clean_labels.astype(np.int64)
    per_seed = {
        s: trim_plans(scores, ctx.is_flipped, methods=methods, trim_percents=trim_percents, seed=s)
        for s in seeds
    }
    n_plans = sum(len({p.key() for p in plans}) for plans in per_seed.values())
    ctx.log(
        f"evaluate: retraining {n_plans} models ({len(seeds)} seed(s) x "
        f"{len(trim_percents)} trim(s) x {len(methods)} method(s) + random and references; "
        "identical training sets are trained once)"
    )
    trained: dict[tuple[str, int], tuple[float, float]] = {}
    results: dict[tuple[str, float | None], list[float]] = {}
    flipped_out: dict[tuple[str, float | None], list[int]] = {}
    seconds: list[float] = []
    t_all = time.perf_counter()
    for seed in seeds:
        for plan in per_seed[seed]:
            key = (plan.key(), seed)
            if key not in trained:
                t0 = time.perf_counter()
                idx = np.flatnonzero(plan.keep)
                labels = labels_clean if plan.clean_labels else labels_given
                model = _train(ctx, idx, labels, seed)
                acc = accuracy(
                    model,
                    ctx.x_test,
                    ctx.y_test,
                    batch_size=ctx.config.batch_size,
                    device=ctx.device,
                )
                dt = time.perf_counter() - t0
                trained[key] = (acc, dt)
                seconds.append(dt)
                left = n_plans - len(trained)
                trim = "" if plan.trim_percent is None else f" trim {plan.trim_percent:g}%"
                ctx.log(
                    f"evaluate: [{len(trained)}/{n_plans}] {plan.method}{trim} seed {seed}: "
                    f"test accuracy {acc:.4f} ({dt:.1f} s; ~{left * np.mean(seconds):.0f} s "
                    "left)"
                )
                del model
            acc = trained[key][0]
            results.setdefault((plan.method, plan.trim_percent), []).append(acc)
            flipped_out.setdefault((plan.method, plan.trim_percent), []).append(
                int((~plan.keep & ctx.is_flipped).sum())
            )
    none_mean = float(np.mean(results[("none", None)]))
    references = []
    for name in REFERENCES:
        plan = per_seed[seeds[0]][REFERENCES.index(name)]
        references.append(
            {
                "method": name,
                "label": REFERENCE_LABELS[name],
                "n_trimmed": int((~plan.keep).sum()),
                **_summary(results[(name, None)]),
            }
        )
    rows = []
    for k in trim_percents:
        for name in ["random", *methods]:
            accs = results[(name, k)]
            n_trim = n_to_trim(k, ctx.n)
            removed = float(np.mean(flipped_out[(name, k)]))
            summary = _summary(accs)
            rows.append(
                {
                    "method": name,
                    "trim_percent": k,
                    "n_trimmed": n_trim,
                    "flipped_trimmed": _r(removed, 2),
                    "precision_of_trimmed": _r(removed / n_trim) if n_trim else None,
                    **summary,
                    "delta_vs_none": _r(summary["mean"] - none_mean),
                }
            )
    run_acc = ctx.manifest.get("model", {}).get("test_accuracy")
    matches = None
    if ctx.config.seed in seeds and run_acc is not None:
        matches = bool(
            abs(trained[(per_seed[ctx.config.seed][0].key(), ctx.config.seed)][0] - run_acc) < 1e-9
        )
    return {
        "n_test": int(len(ctx.data.test)),
        "score_digests": {m: _column_digest(scores, m) for m in methods},
        "seeds": seeds,
        "trim_percents": trim_percents,
        "methods": methods,
        "recipe": str(ctx.recipe),
        "device": str(ctx.device),
        "models_trained": len(trained),
        "seconds": _r(time.perf_counter() - t_all, 2),
        "seconds_per_model": _r(float(np.mean(seconds)), 2) if seconds else None,
        "accuracy_is": "final-epoch accuracy on the held-out test split (no model selection)",
        "std_is": "sample standard deviation over the seeds (ddof=1)",
        "no_trim_reproduces_run": matches,
        "references": references,
        "rows": rows,
    }


# ---- the report -----------------------------------------------------------------------------


def _machine(device: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": device,
    }
    torch = sys.modules.get("torch")  # only when this evaluation trained: never import it here
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def _column_digest(scores: pd.DataFrame, name: str) -> str | None:
    col = f"{name}_score"
    if col not in scores.columns:
        return None
    return hashlib.sha256(scores[col].to_numpy(dtype=np.float64).tobytes()).hexdigest()[:16]


def _previous_report(rd: RunDir) -> dict[str, Any]:
    """The run's earlier evaluation.json ({} when there is none or it cannot be read)."""
    path = rd.path / EVALUATION_JSON
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def _previous_baselines(previous: dict[str, Any], scores: pd.DataFrame) -> dict[str, Any]:
    """Baseline info of an earlier report whose columns are still those in scores."""
    old = previous.get("baselines") or {}
    if not isinstance(old, dict):
        return {}
    return {
        name: info
        for name, info in old.items()
        if isinstance(info, dict) and info.get("score_digest") == _column_digest(scores, name)
    }


def _previous_retrain(previous: dict[str, Any], scores: pd.DataFrame) -> dict[str, Any] | None:
    """The retrain section of an earlier report, kept when every method it trimmed still has
    exactly the scores it was trimmed by (else None: those results are stale)."""
    section = previous.get("retrain")
    if not isinstance(section, dict):
        return None
    digests = section.get("score_digests")
    if not isinstance(digests, dict) or not digests:
        return None
    if any(_column_digest(scores, m) != d for m, d in digests.items()):
        return None
    return {
        **section,
        "from_report_created": section.get("from_report_created") or previous.get("created"),
    }


def evaluate_run(
    run_dir: str | Path,
    *,
    retrain: bool,
    baselines: bool,
    trim_percents: Sequence[float] = DEFAULT_TRIM_PERCENTS,
    seeds: int = 3,
    detectors: Sequence[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    time_detectors: bool = True,
    log: Log = _stderr,
) -> dict[str, Any]:
    """Evaluate a run with known noise; writes ``evaluation.json`` into the run dir.

    Args:
        run_dir: a complete run computed with ``--noise``.
        retrain: trim each method's top k% and retrain (needs the run's held-out test split).
        baselines: add the cleanlab (K-fold CV) and TracIn columns to scores.parquet.
        trim_percents: the k values for ``retrain`` (percent of the training samples).
        seeds: number of training seeds for ``retrain`` (the run's seed, +1, ...).
        detectors: the methods to retrain with (default: every scored column).
        folds: cross-validation folds of the cleanlab baseline.
        time_detectors: re-fit each detector once to time it.
        log: receives progress lines.
    Returns:
        the report (JSON-able dict); see :func:`format_report`.
    """
    from ogad_core.scoring.metrics import evaluation_table

    rd = RunDir(run_dir)
    manifest = rd.read_manifest()
    if manifest.get("steps", {}).get("scores", {}).get("status") != "done":
        raise RunDirError(f"{rd.path} has no finished scores step; run `ogad compute` first")
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if folds < 2:
        raise ConfigError(f"cleanlab cross-validation needs >= 2 folds, got {folds}")
    trims = _validate_trims(trim_percents) if retrain else [float(k) for k in trim_percents]
    samples = rd.read_samples()
    flags = _is_flipped(samples, rd.path)
    scores = rd.read_scores()
    if len(scores) != len(samples) or not np.array_equal(scores["sample_id"], samples["sample_id"]):
        raise RunDirError(f"{rd.path}: scores.parquet and samples.parquet list different samples")
    scored = [c[: -len("_score")] for c in scores.columns if c.endswith("_score")]
    if retrain and detectors is not None:
        unknown = [m for m in detectors if m not in scored and m not in ("cleanlab", "tracin")]
        if unknown or (not baselines and any(m not in scored for m in detectors)):
            missing = unknown or [m for m in detectors if m not in scored]
            raise ConfigError(
                f"no scores for {', '.join(missing)}; scored: {', '.join(scored)}"
                + ("" if baselines else " (cleanlab and tracin need --baselines)")
            )
    if retrain and not manifest.get("data", {}).get("n_test"):
        raise ConfigError(
            f"{rd.path} has no held-out test split ({manifest['config'].get('data')}); --retrain "
            "needs one (use a sample set: mnist5k, digits, moons, rotten-tomatoes)"
        )

    previous = _previous_report(rd)  # read before this evaluation overwrites it
    ctx = None
    if retrain or baselines:
        ctx = _load_context(rd, manifest, need_test=retrain, log=log)

    baseline_info: dict[str, Any] = {}
    grad_seconds, grad_source = None, None
    if baselines:
        assert ctx is not None
        log("evaluate: TracIn self-influence over the stored checkpoint gradients")
        tracin, info_t = _tracin_baseline(rd, manifest, ctx.recipe.lr)
        new = {"tracin": tracin}
        try:
            log(f"evaluate: cleanlab on {folds}-fold cross-validated predicted probabilities")
            cl, info_c = cleanlab_baseline(ctx, folds=folds)
            new["cleanlab"] = cl
            baseline_info["cleanlab"] = info_c
        except ConfigError as err:
            if "--checkpoint" not in str(err):
                raise
            log(f"evaluate: cleanlab skipped: {err}")
            baseline_info["cleanlab"] = {"skipped": str(err)}
        baseline_info["tracin"] = info_t
        _merge_scores(rd, manifest, new)
        scores = rd.read_scores()
        for name in new:
            baseline_info[name]["score_digest"] = _column_digest(scores, name)
        grad_seconds, grad_source = _time_gradients(ctx)
    else:
        baseline_info = _previous_baselines(previous, scores)

    table = evaluation_table(scores, flags)
    names = list(table["detector"])
    timing = _time_detectors(rd, manifest, samples, names, log) if time_detectors else {}

    # --- compute cost per method -------------------------------------------------------------
    steps = manifest.get("steps", {})
    n_ckpt = int(manifest.get("dims", {}).get("n_checkpoints", 1))
    if grad_seconds is None and steps.get("gradients", {}).get("seconds") is not None:
        grad_seconds = float(steps["gradients"]["seconds"]) / n_ckpt
        grad_source = f"the run's gradients step / {n_ckpt} checkpoint(s)"
    retrain_section = None if retrain else _previous_retrain(previous, scores)
    if retrain:
        assert ctx is not None
        methods = list(detectors) if detectors is not None else names
        unknown = [m for m in methods if m not in names]
        if unknown:
            raise ConfigError(f"no scores for {', '.join(unknown)}; scored: {', '.join(names)}")
        seed_list = [ctx.config.seed + i for i in range(seeds)]
        retrain_section = _retrain(ctx, scores, methods, trims, seed_list)

    # One training of the model, measured as close as possible to cleanlab's folds: from the
    # folds themselves (same load), else this evaluation's retraining, else the run's train step.
    train_seconds, train_source = None, None
    cl_info = baseline_info.get("cleanlab", {})
    if cl_info.get("seconds_cv_training") and cl_info.get("folds"):
        # K folds of (K-1)/K of the data = K-1 trainings of the whole set
        train_seconds = cl_info["seconds_cv_training"] / (cl_info["folds"] - 1)
        train_source = "estimated from cleanlab's CV folds (timed under the same load)"
    elif retrain_section is not None and retrain_section["seconds_per_model"]:
        train_seconds = retrain_section["seconds_per_model"]
        train_source = "mean retraining time of this evaluation"
    elif steps.get("train", {}).get("trained"):
        train_seconds = float(steps["train"]["seconds"])
        train_source = "the run's train step (includes preparing the inputs, e.g. text encoding)"

    rows = []
    for rec in table.to_dict(orient="records"):
        name = rec["detector"]
        own = timing.get(name)
        total = None
        if name == "cleanlab":
            own = baseline_info.get("cleanlab", {}).get("seconds")
            total = own
        elif name == "tracin":
            info = baseline_info.get("tracin", {})
            if grad_seconds is not None and info.get("seconds_sum") is not None:
                own = grad_seconds * (info["checkpoints"] - 1) + info["seconds_sum"]
                if train_seconds is not None:
                    total = train_seconds + grad_seconds + own
        elif own is not None and train_seconds is not None:
            if name in NON_GRADIENT:
                total = train_seconds + own
            elif grad_seconds is not None:
                k = n_ckpt if name.endswith("_ckpt") else 1
                total = train_seconds + k * grad_seconds + own
        rows.append(
            {
                "detector": name,
                "kind": "gradient"
                if name not in NON_GRADIENT
                else ("baseline" if name in ("cleanlab", "tracin") else "loss-based"),
                **{
                    k: (_r(v) if isinstance(v, float) else v)
                    for k, v in rec.items()
                    if k != "detector"
                },
                "seconds": _r(own, 3),
                "total_seconds": _r(total, 3),
            }
        )

    compute = {
        "train_seconds": _r(train_seconds, 2),
        "train_seconds_source": train_source,
        "gradient_seconds": _r(grad_seconds, 3),
        "gradient_seconds_source": grad_source,
        "seconds_is": (
            "method-only wall time: detector fit; cleanlab: K fold trainings + "
            "predictions + cleanlab; tracin: gradients at the earlier checkpoints + "
            "the sum"
        ),
        "total_seconds_is": (
            "from the prepared inputs: training the model once + extracting "
            "the gradients (per checkpoint used) + the method; cleanlab needs "
            "no final model, its total is its own; input preparation shared by "
            "every method (e.g. text encoding) is not counted"
        ),
    }
    grad_rows = [r for r in rows if r["kind"] == "gradient"]
    cl_row = next((r for r in rows if r["detector"] == "cleanlab"), None)
    if grad_rows:
        best = max(grad_rows, key=lambda r: r["auroc"])
        compute["best_gradient_detector"] = best["detector"]
        compute["best_gradient_auroc"] = best["auroc"]
        compute["best_gradient_total_seconds"] = best["total_seconds"]
        if cl_row is not None:
            gap = best["auroc"] - cl_row["auroc"]
            compute["cleanlab_auroc"] = cl_row["auroc"]
            compute["cleanlab_total_seconds"] = cl_row["total_seconds"]
            compute["auroc_gap_vs_cleanlab"] = _r(gap)
            compute["within_0_01_of_cleanlab_or_better"] = bool(gap >= -0.01)
            if best["total_seconds"] and cl_row["total_seconds"]:
                compute["cleanlab_over_best_gradient_compute"] = _r(
                    cl_row["total_seconds"] / best["total_seconds"], 2
                )

    data = manifest.get("data", {})
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "created": utc_now(),
        "run_dir": str(rd.path),
        "data": {
            "spec": data.get("spec"),
            "kind": data.get("kind"),
            "n_train": int(len(samples)),
            "n_test": data.get("n_test"),
            "n_classes": data.get("n_classes"),
            "noise": data.get("noise"),
            "n_flipped": int(flags.sum()),
        },
        "model": {
            "class": manifest.get("model", {}).get("class"),
            "recipe": manifest.get("model", {}).get("recipe"),
            "test_accuracy": manifest.get("model", {}).get("test_accuracy"),
            "params": manifest.get("params"),
            "n_checkpoints": n_ckpt,
        },
        "machine": _machine(str(ctx.device) if ctx is not None else None),
        "run_steps_seconds": {k: v.get("seconds") for k, v in steps.items()},
        "detection": rows,
        "compute": compute,
        "baselines": baseline_info or None,
        "retrain": retrain_section,
    }
    ratio = ratio_same_load(report)
    if ratio is not None:
        compute["cleanlab_over_best_gradient_compute_same_load"] = _r(ratio, 2)
    try:
        write_json_atomic(rd.path / EVALUATION_JSON, report)
    except OSError as err:
        log(f"evaluate: could not write {rd.path / EVALUATION_JSON}: {err.strerror or err}")
    return report


def ratio_same_load(report: dict[str, Any]) -> float | None:
    """cleanlab's compute over the best gradient detector's, with the one training the detector
    needs estimated from cleanlab's own CV folds (K folds of (K-1)/K of the data = K-1
    trainings), so that both sides are timed under the same machine load. None if unknown."""
    c = report.get("compute") or {}
    info = (report.get("baselines") or {}).get("cleanlab") or {}
    rows = {r["detector"]: r for r in report.get("detection", [])}
    best, cl = rows.get(c.get("best_gradient_detector")), rows.get("cleanlab")
    if (
        best is None
        or cl is None
        or not info.get("seconds_cv_training")
        or not info.get("folds")
        or c.get("gradient_seconds") is None
        or best.get("seconds") is None
        or not cl.get("total_seconds")
    ):
        return None
    n_ckpt = int((report.get("model") or {}).get("n_checkpoints") or 1)
    k = n_ckpt if best["detector"].endswith("_ckpt") else 1
    train = info["seconds_cv_training"] / (info["folds"] - 1)
    return cl["total_seconds"] / (train + k * c["gradient_seconds"] + best["seconds"])


# ---- formatting -----------------------------------------------------------------------------


def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _mean_std(entry: dict[str, Any]) -> str:
    if entry.get("mean") is None:
        return "-"
    std = entry.get("std")
    return f"{entry['mean']:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def format_report(report: dict[str, Any]) -> str:
    """The report as readable text tables."""
    d = report["data"]
    noise = d.get("noise") or {}
    out = [
        f"ogad evaluate: {report['run_dir']}",
        f"data {d['spec']}: {d['n_train']} train / {d.get('n_test') or 0} test, "
        f"{d['n_flipped']} labels flipped ({noise.get('kind', '?')} noise)",
        "",
        "Detection of the flipped labels (higher score = more suspicious; seconds = the "
        "method alone, total = incl. training the model and extracting the gradients)",
    ]
    headers = [
        "method",
        "AUROC",
        "AP",
        "P@1%",
        "P@5%",
        "P@10%",
        "R@n_flipped",
        "seconds",
        "total s",
    ]
    rows = [
        [
            r["detector"],
            _fmt(r["auroc"]),
            _fmt(r["average_precision"]),
            _fmt(r["precision_at_1pct"]),
            _fmt(r["precision_at_5pct"]),
            _fmt(r["precision_at_10pct"]),
            _fmt(r["recall_at_n_flipped"]),
            _fmt(r["seconds"], ".2f"),
            _fmt(r["total_seconds"], ".1f"),
        ]
        for r in report["detection"]
    ]
    out.append(_table(headers, rows))
    c = report.get("compute") or {}
    if c.get("train_seconds") is not None:
        out.append(
            f"(training {c['train_seconds']:.1f} s: {c['train_seconds_source']}; "
            f"gradients {_fmt(c.get('gradient_seconds'), '.1f')} s per checkpoint: "
            f"{c.get('gradient_seconds_source')})"
        )
    if "cleanlab_auroc" in c:
        ratio = c.get("cleanlab_over_best_gradient_compute")
        out.append(
            f"best gradient detector {c['best_gradient_detector']} AUROC "
            f"{c['best_gradient_auroc']:.4f} vs cleanlab {c['cleanlab_auroc']:.4f} "
            f"(gap {c['auroc_gap_vs_cleanlab']:+.4f}; "
            f"{'within 0.01 or better' if c['within_0_01_of_cleanlab_or_better'] else 'worse by more than 0.01'})"  # noqa: E501
            + (f"; cleanlab needs {ratio:.1f}x its compute" if ratio else "")
        )
        same = c.get("cleanlab_over_best_gradient_compute_same_load")
        if same and (not ratio or abs(same - ratio) > 0.05):
            out.append(
                f"(with its training time estimated from cleanlab's CV folds, i.e. "
                f"timed under the same load: {same:.1f}x)"
            )
    for name, info in (report.get("baselines") or {}).items():
        if info.get("skipped"):
            out.append(f"{name}: skipped ({info['skipped']})")
        else:
            out.append(f"{name}: {info.get('method', '')}")
            if name == "cleanlab" and info.get("n_label_issues") is not None:
                out.append(
                    f"  find_label_issues flags {info['n_label_issues']} samples "
                    f"(precision {_fmt(info.get('label_issues_precision'))}, recall "
                    f"{_fmt(info.get('label_issues_recall'))})"
                )
            for note in info.get("notes", []):
                out.append(f"  note: {note}")
    rt = report.get("retrain")
    if rt:
        out += [
            "",
            f"Retraining: final-epoch test accuracy on the {rt['n_test']} held-out samples, "
            f"mean ± std over seeds {rt['seeds']}; {rt['models_trained']} models trained, "
            f"{rt['seconds_per_model']:.1f} s each",
        ]
        out.append(
            _table(
                ["reference", "trimmed", "test accuracy"],
                [
                    [f"{r['method']} ({r['label']})", str(r["n_trimmed"]), _mean_std(r)]
                    for r in rt["references"]
                ],
            )
        )
        trims = rt["trim_percents"]
        by = {(r["method"], r["trim_percent"]): r for r in rt["rows"]}
        headers = ["method"] + [f"trim {k:g}% ({by[('random', k)]['n_trimmed']})" for k in trims]
        rows = []
        for name in ["random", *rt["methods"]]:
            cells = [name]
            for k in trims:
                r = by[(name, k)]
                cells.append(f"{_mean_std(r)} [{r['flipped_trimmed']:g} fl]")
            rows.append(cells)
        out.append("")
        out.append(_table(headers, rows))
        out.append("[N fl] = flipped samples among the trimmed (mean over seeds)")
        if rt.get("no_trim_reproduces_run") is False:
            out.append(
                "note: retraining without trimming did not reproduce the run's test "
                "accuracy exactly (non-deterministic kernels?)"
            )
    return "\n".join(out)

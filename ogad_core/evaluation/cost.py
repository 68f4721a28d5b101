"""What each method costs: re-timed detectors and gradients, one training, and the quality bar
(the best gradient detector against cleanlab, in AUROC and in compute).

``seconds`` is the method alone; ``total_seconds`` adds what it needs from the prepared inputs:
one training of the model and the gradients of each checkpoint it reads. Torch is imported only
by :func:`time_gradients`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ogad_core._internal import log, one_line
from ogad_core.errors import OgadError, RunDirError
from ogad_core.evaluation.context import RunContext, new_model
from ogad_core.evaluation.schema import (
    AUROC_MARGIN,
    BASELINES,
    NON_GRADIENT,
    Baselines,
    ComputeCost,
    DetectionRow,
    EvaluationReport,
    RetrainResults,
)
from ogad_core.run.manifest import Manifest
from ogad_core.run.rundir import RunDir

__all__ = [
    "GRADIENT_TIMING_MAX_ROWS",
    "Timings",
    "compute_cost",
    "detection_rows",
    "ratio_same_load",
    "run_gradient_seconds",
    "time_detectors",
    "time_gradients",
    "training_seconds",
]

#: gradients are re-timed on at most this many rows, then scaled to the run's size
GRADIENT_TIMING_MAX_ROWS = 20_000
SECONDS_IS = (
    "method-only wall time: detector fit; cleanlab: K fold trainings + predictions + cleanlab; "
    "tracin: gradients at the earlier checkpoints + the sum"
)
TOTAL_SECONDS_IS = (
    "from the prepared inputs: training the model once + extracting the gradients (per "
    "checkpoint used) + the method; cleanlab needs no final model, its total is its own; input "
    "preparation shared by every method (e.g. text encoding) is not counted"
)


def _round(value: float | None, digits: int = 6) -> float | None:
    """JSON-safe rounding: None for missing or non-finite values."""
    if value is None or not np.isfinite(float(value)):
        return None
    return round(float(value), digits)


@dataclass
class Timings:
    """The seconds an evaluation measured or took from the run.

    Attributes:
        detectors: method -> seconds of one fit (None where it could not be re-run).
        train / gradient: one training, gradients of one checkpoint (None when unknown).
        n_checkpoints: checkpoints whose gradients the run stored.
    """

    detectors: dict[str, float | None]
    train: float | None
    train_source: str | None
    gradient: float | None
    gradient_source: str | None
    n_checkpoints: int


# ---- measuring ------------------------------------------------------------------------------


def time_detectors(
    rd: RunDir, manifest: Manifest, samples: pd.DataFrame, names: Sequence[str]
) -> dict[str, float | None]:
    """Re-fit each scored detector (same settings) and time it; None when it cannot be re-run."""
    from ogad_core.pipeline import load_embeddings
    from ogad_core.scoring.detectors import suspicion_scores

    scoring = manifest.scoring
    out: dict[str, float | None] = {}
    cache: dict[str, np.ndarray] = {}
    for name in (n for n in names if n not in BASELINES):
        ckpt = name.endswith("_ckpt")
        embedding = "checkpoints" if ckpt else "final"
        try:
            if embedding not in cache:
                cache[embedding] = load_embeddings(rd, manifest, embedding)
            t0 = time.perf_counter()
            suspicion_scores(
                name.removesuffix("_ckpt"),
                cache[embedding],
                samples,
                per_class=bool(scoring.get("per_class", False)),
                seed=int(scoring.get("seed", 0)),
            )
            out[name] = time.perf_counter() - t0
        except (OgadError, ImportError, OSError) as err:
            log.info(f"evaluate: cannot re-time detector {name}: {one_line(err)}")
            out[name] = None
    return out


def time_gradients(ctx: RunContext) -> tuple[float, str]:
    """Seconds to extract the final model's gradients (re-timed on up to 20,000 rows)."""
    import torch

    from ogad_core.engine.datasets import take_rows
    from ogad_core.engine.gradients import compute_gradients

    model = new_model(ctx, ctx.config.seed)
    final = ctx.rd.final_model_path
    if not ctx.config.checkpoint:
        if not final.is_file():
            raise RunDirError(
                f"{ctx.rd.path} has no {final.relative_to(ctx.rd.path)}; run `ogad compute` again"
            )
        model.load_state_dict(torch.load(final, map_location="cpu", weights_only=True))
    n = min(ctx.n, GRADIENT_TIMING_MAX_ROWS)
    t0 = time.perf_counter()
    g = compute_gradients(
        model,
        take_rows(ctx.x_train, ctx.y_train, np.arange(n)),
        ctx.manifest.params or "last",
        batch_size=ctx.config.batch_size,
        device=str(ctx.device),
        proj_dim=ctx.config.proj_dim,
        seed=ctx.config.seed,
        progress=False,
    )
    seconds = (time.perf_counter() - t0) * ctx.n / n
    stored = np.load(ctx.rd.gradients_path, mmap_mode="r")[:n]
    source = f"re-timed on {n} rows" + (f", scaled to {ctx.n}" if n < ctx.n else "")
    if not np.allclose(g, stored, rtol=1e-3, atol=1e-5):
        source += " (note: differ from the stored gradients)"
    return seconds, source


def run_gradient_seconds(manifest: Manifest) -> tuple[float | None, str | None]:
    """Gradient seconds per checkpoint as the run's gradients step recorded them."""
    step = manifest.steps.get("gradients")
    if step is None or step.seconds is None:
        return None, None
    n_ckpt = int(manifest.dims.get("n_checkpoints", 1))
    return float(step.seconds) / n_ckpt, f"the run's gradients step / {n_ckpt} checkpoint(s)"


def training_seconds(
    manifest: Manifest, baselines: Baselines | None, retrain: RetrainResults | None
) -> tuple[float | None, str | None]:
    """One training of the model, measured as close as possible to cleanlab's folds: from the
    folds themselves (same load), else this evaluation's retraining, else the run's train step."""
    cl = baselines.cleanlab if baselines is not None else None
    if cl is not None and cl.seconds_cv_training and cl.folds:
        # K folds of (K-1)/K of the data = K-1 trainings of the whole set
        return (
            cl.seconds_cv_training / (cl.folds - 1),
            "estimated from cleanlab's CV folds (timed under the same load)",
        )
    if retrain is not None and retrain.seconds_per_model:
        return retrain.seconds_per_model, "mean retraining time of this evaluation"
    train = manifest.steps.get("train")
    if train is not None and train.extra.get("trained") and train.seconds is not None:
        return (
            float(train.seconds),
            "the run's train step (includes preparing the inputs, e.g. text encoding)",
        )
    return None, None


# ---- the report's rows ----------------------------------------------------------------------


def _method_seconds(
    name: str, timings: Timings, baselines: Baselines | None
) -> tuple[float | None, float | None]:
    """(seconds of the method alone, total seconds from the prepared inputs)."""
    train, grad = timings.train, timings.gradient
    if name == "cleanlab":
        own = baselines.cleanlab.seconds if baselines and baselines.cleanlab else None
        return own, own
    if name == "tracin":
        info = baselines.tracin if baselines else None
        if grad is None or info is None or info.seconds_sum is None or info.checkpoints is None:
            return None, None
        own = grad * (info.checkpoints - 1) + info.seconds_sum
        return own, None if train is None else train + grad + own
    own = timings.detectors.get(name)
    if own is None or train is None:
        return own, None
    if name in NON_GRADIENT:
        return own, train + own
    if grad is None:
        return own, None
    k = timings.n_checkpoints if name.endswith("_ckpt") else 1
    return own, train + k * grad + own


def detection_rows(
    table: pd.DataFrame, timings: Timings, baselines: Baselines | None
) -> list[DetectionRow]:
    """The report's rows: ``metrics.evaluation_table`` (one row per method) plus the seconds."""
    rows = []
    for rec in table.to_dict(orient="records"):
        name = str(rec.pop("detector"))
        row = DetectionRow.from_metrics(name, rec, digits=6)
        own, total = _method_seconds(name, timings, baselines)
        row.seconds, row.total_seconds = _round(own, 3), _round(total, 3)
        rows.append(row)
    return rows


def compute_cost(rows: list[DetectionRow], timings: Timings) -> ComputeCost:
    """How the seconds were measured, and the best gradient detector against cleanlab."""
    cost = ComputeCost(
        train_seconds=_round(timings.train, 2),
        train_seconds_source=timings.train_source,
        gradient_seconds=_round(timings.gradient, 3),
        gradient_seconds_source=timings.gradient_source,
        seconds_is=SECONDS_IS,
        total_seconds_is=TOTAL_SECONDS_IS,
    )
    grad_rows = [r for r in rows if r.kind == "gradient"]
    if not grad_rows:
        return cost
    best = max(grad_rows, key=lambda r: r.auroc)
    cost.best_gradient_detector = best.detector
    cost.best_gradient_auroc = best.auroc
    cost.best_gradient_total_seconds = best.total_seconds
    cl = next((r for r in rows if r.detector == "cleanlab"), None)
    if cl is None:
        return cost
    gap = best.auroc - cl.auroc
    cost.cleanlab_auroc = cl.auroc
    cost.cleanlab_total_seconds = cl.total_seconds
    cost.auroc_gap_vs_cleanlab = _round(gap)
    cost.within_0_01_of_cleanlab_or_better = bool(gap >= -AUROC_MARGIN)
    if best.total_seconds and cl.total_seconds:
        cost.cleanlab_over_best_gradient_compute = _round(cl.total_seconds / best.total_seconds, 2)
    return cost


def ratio_same_load(report: EvaluationReport) -> float | None:
    """cleanlab's compute over the best gradient detector's, with the one training the detector
    needs estimated from cleanlab's own CV folds (K folds of (K-1)/K of the data = K-1
    trainings), so that both sides are timed under the same machine load. None if unknown."""
    c = report.compute
    info = report.baselines.cleanlab if report.baselines else None
    if c is None or info is None or c.best_gradient_detector is None:
        return None
    best, cl = report.row(c.best_gradient_detector), report.row("cleanlab")
    if best is None or cl is None or best.seconds is None or not cl.total_seconds:
        return None
    if not info.seconds_cv_training or not info.folds or c.gradient_seconds is None:
        return None
    n_ckpt = report.model.n_checkpoints if report.model else 1
    k = n_ckpt if best.detector.endswith("_ckpt") else 1
    train = info.seconds_cv_training / (info.folds - 1)
    return cl.total_seconds / (train + k * c.gradient_seconds + best.seconds)

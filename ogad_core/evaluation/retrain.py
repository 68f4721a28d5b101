"""Retraining (``ogad evaluate --retrain``): trim each method's top k%, retrain, test accuracy.

For each method, trim its top k% (by rank), retrain the run's model from scratch on the rest with
the same recipe, and report the final-epoch accuracy on the held-out test split (never
best-on-test), next to no trimming, random trimming of the same size, and two oracles:
``oracle_drop_flipped`` (drop exactly the flipped samples) and ``oracle_clean_labels`` (train on
the true labels of all samples). Mean and sample std over the training seeds; training is
deterministic, so a trimmed set identical to one already trained (same seed) is trained once.

Cost: every retrained model costs one training of the run. Measured on 2 shared CPU cores with
one torch thread: mnist5k 28-56 s per model, digits/moons 0.5-20 s. A sweep trains up to
``seeds * (3 + len(trim) * (1 + n_methods))`` models -- mnist5k with 4 trims, 8 methods and
3 seeds: 117 models, about 1-2 hours -- so pick fewer trims, methods or seeds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ogad_core._internal import log
from ogad_core.errors import RunDirError
from ogad_core.evaluation.baselines import column_digest
from ogad_core.evaluation.context import RunContext, require_trainable, train_subset
from ogad_core.evaluation.plans import TrimPlan, n_to_trim, trim_plans
from ogad_core.evaluation.schema import (
    REFERENCE_LABELS,
    REFERENCES,
    AccuracySummary,
    ReferenceRow,
    RetrainResults,
    TrimRow,
)

__all__ = ["retrain_methods", "summarize_accuracy"]

ACCURACY_IS = "final-epoch accuracy on the held-out test split (no model selection)"
STD_IS = "sample standard deviation over the seeds (ddof=1)"


def _round(value: float, digits: int = 6) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def summarize_accuracy(values: Sequence[float]) -> AccuracySummary:
    """Accuracies over the seeds, their mean and sample std (None for one seed)."""
    arr = np.asarray(values, dtype=np.float64)
    return AccuracySummary(
        accuracy=[_round(v) for v in arr],
        mean=_round(arr.mean()),
        std=_round(arr.std(ddof=1)) if arr.size > 1 else None,
    )


@dataclass
class _Trained:
    """Every model trained so far: (plan key, seed) -> (test accuracy, seconds)."""

    total: int
    models: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)

    def seconds(self) -> list[float]:
        return [s for _, s in self.models.values()]


def _train_plan(ctx: RunContext, plan: TrimPlan, seed: int, done: _Trained) -> float:
    """Test accuracy of the model trained on ``plan`` with ``seed`` (trained once per key)."""
    from ogad_core.engine.train import accuracy

    key = (plan.key(), seed)
    if key in done.models:
        return done.models[key][0]
    assert ctx.x_test is not None and ctx.y_test is not None  # load_context(need_test=True)
    t0 = time.perf_counter()
    labels = ctx.data.clean_labels if plan.clean_labels else ctx.data.train.labels
    if labels is None:  # load_context checked the noise: clean labels exist
        raise RunDirError(f"{ctx.rd.path}: the data has no clean labels to retrain with")
    model = train_subset(ctx, np.flatnonzero(plan.keep), labels.astype(np.int64), seed)
    acc = accuracy(
        model, ctx.x_test, ctx.y_test, batch_size=ctx.config.batch_size, device=ctx.device
    )
    done.models[key] = (acc, time.perf_counter() - t0)
    left = (done.total - len(done.models)) * float(np.mean(done.seconds()))
    trim = "" if plan.trim_percent is None else f" trim {plan.trim_percent:g}%"
    log.info(
        f"evaluate: [{len(done.models)}/{done.total}] {plan.method}{trim} seed {seed}: "
        f"test accuracy {acc:.4f} ({done.models[key][1]:.1f} s; ~{left:.0f} s left)"
    )
    return acc


def _trim_rows(
    ctx: RunContext,
    accuracies: dict[tuple[str, float | None], list[float]],
    flipped_out: dict[tuple[str, float | None], list[int]],
    methods: Sequence[str],
    trim_percents: Sequence[float],
) -> list[TrimRow]:
    none_mean = float(np.mean(accuracies[("none", None)]))
    rows = []
    for k in trim_percents:
        n_trim = n_to_trim(k, ctx.n)
        for name in ["random", *methods]:
            summary = summarize_accuracy(accuracies[(name, k)])
            removed = float(np.mean(flipped_out[(name, k)]))
            rows.append(
                TrimRow(
                    method=name,
                    trim_percent=k,
                    n_trimmed=n_trim,
                    flipped_trimmed=round(removed, 2),
                    precision_of_trimmed=round(removed / n_trim, 6) if n_trim else None,
                    accuracy=summary.accuracy,
                    mean=summary.mean,
                    std=summary.std,
                    delta_vs_none=None
                    if summary.mean is None
                    else _round(summary.mean - none_mean),
                )
            )
    return rows


def _reference_rows(
    plans: list[TrimPlan], accuracies: dict[tuple[str, float | None], list[float]]
) -> list[ReferenceRow]:
    by_method = {p.method: p for p in plans if p.trim_percent is None}
    out = []
    for name in REFERENCES:
        summary = summarize_accuracy(accuracies[(name, None)])
        out.append(
            ReferenceRow(
                method=name,
                label=REFERENCE_LABELS[name],
                n_trimmed=int((~by_method[name].keep).sum()),
                accuracy=summary.accuracy,
                mean=summary.mean,
                std=summary.std,
            )
        )
    return out


def _reproduces_run(ctx: RunContext, plans: list[TrimPlan], done: _Trained) -> bool | None:
    """Whether retraining without trimming (the run's seed) gave the run's test accuracy."""
    run_acc = ctx.manifest.model.get("test_accuracy")
    key = (plans[0].key(), ctx.config.seed)
    if run_acc is None or key not in done.models:
        return None
    return bool(abs(done.models[key][0] - run_acc) < 1e-9)


def retrain_methods(
    ctx: RunContext,
    scores: pd.DataFrame,
    methods: list[str],
    trim_percents: list[float],
    seeds: list[int],
) -> RetrainResults:
    """Train every plan of every seed; returns the report's ``retrain`` section.

    Args:
        scores: the scores table (``D_rank`` of every method), rows in sample order.
        methods: the methods whose top k% are trimmed.
        trim_percents: the k values; seeds: the training seeds.
    """
    require_trainable(ctx, "retraining")
    per_seed = {
        s: trim_plans(scores, ctx.is_flipped, methods=methods, trim_percents=trim_percents, seed=s)
        for s in seeds
    }
    done = _Trained(total=sum(len({p.key() for p in plans}) for plans in per_seed.values()))
    log.info(
        f"evaluate: retraining {done.total} models ({len(seeds)} seed(s) x "
        f"{len(trim_percents)} trim(s) x {len(methods)} method(s) + random and references; "
        "identical training sets are trained once)"
    )
    accuracies: dict[tuple[str, float | None], list[float]] = {}
    flipped_out: dict[tuple[str, float | None], list[int]] = {}
    t_all = time.perf_counter()
    for seed in seeds:
        for plan in per_seed[seed]:
            where = (plan.method, plan.trim_percent)
            accuracies.setdefault(where, []).append(_train_plan(ctx, plan, seed, done))
            flipped_out.setdefault(where, []).append(int((~plan.keep & ctx.is_flipped).sum()))
    seconds = done.seconds()
    return RetrainResults(
        n_test=None if ctx.data.test is None else len(ctx.data.test),
        score_digests={m: column_digest(scores, m) for m in methods},
        seeds=list(seeds),
        trim_percents=list(trim_percents),
        methods=list(methods),
        recipe=str(ctx.recipe),
        device=str(ctx.device),
        models_trained=len(done.models),
        seconds=round(time.perf_counter() - t_all, 2),
        seconds_per_model=round(float(np.mean(seconds)), 2) if seconds else None,
        accuracy_is=ACCURACY_IS,
        std_is=STD_IS,
        no_trim_reproduces_run=_reproduces_run(ctx, per_seed[seeds[0]], done),
        references=_reference_rows(per_seed[seeds[0]], accuracies),
        rows=_trim_rows(ctx, accuracies, flipped_out, methods, trim_percents),
    )

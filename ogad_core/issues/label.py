"""``label``: the given label looks wrong — the run's default detector's ranking, as before."""

from __future__ import annotations

import numpy as np

from ogad_core.errors import DataError
from ogad_core.issues.base import IssueContext, IssueType
from ogad_core.issues.duplicate import conflicting_sets
from ogad_core.options import DEFAULT_DETECTOR


class LabelIssue(IssueType):
    """Label issues: the score of ``detector`` (default: the run's default detector) from
    scores.parquet; flagged are the top ``review target`` samples (confident learning's
    estimate of the number of wrong labels, :mod:`ogad_core.scoring.target`).

    Args:
        detector: the detector whose scores rank the samples (None: the run's default).
    """

    name = "label"
    title = "Label issues"
    after = ("corrupt", "duplicate", "outlier")
    threshold_doc = (
        "the top n samples of the default detector, n = the review target (confident learning's "
        "estimate of the number of wrong labels) less the samples another issue type explains "
        "(corrupt, outlier, or in a duplicate set whose labels differ: reviewed there, and "
        "ranked just after the flags)"
    )

    def __init__(self, detector: str | None = None) -> None:
        self.detector = detector

    def fit(self, context: IssueContext) -> LabelIssue:
        from ogad_core.scoring.target import estimate_review_target

        detector = self.detector or context.detector or DEFAULT_DETECTOR
        scores = context.scores
        column = f"{detector}_score"
        if scores is None or column not in scores.columns:
            raise DataError(f"the run has no {detector} scores; run `ogad score DIR` first")
        values = np.nan_to_num(scores[column].to_numpy(dtype=np.float64), nan=-np.inf)
        values = np.where(np.isfinite(values), values, np.nanmin(values[np.isfinite(values)]))
        target = estimate_review_target(
            context.samples, scores, detector, test_accuracy=context.test_accuracy
        )
        n_flag = min(int(target.n_target), len(values))
        self.deferred_ = explained_elsewhere(context)
        if self.deferred_.any():  # reviewed as corrupt / outlier / a conflicting duplicate set
            values, n_flag = _after_the_flagged(values, self.deferred_, n_flag)
        threshold = float(np.sort(values)[::-1][n_flag - 1]) if n_flag else np.inf
        self.detector_ = detector
        self._pred = context.samples["pred"].to_numpy() if "pred" in context.samples else None
        self._conf = context.samples.get("confidence")
        self._names = list(context.label_names)
        self._finish(values, threshold)
        # ties at the threshold may flag a few more than the target: keep exactly n_flag
        order = np.lexsort((np.arange(len(values)), -values))
        self.flagged_ = np.zeros(len(values), dtype=bool)
        self.flagged_[order[:n_flag]] = True
        return self

    def explain(self, i: int) -> str:
        if self.deferred_[i]:
            return "left to the issue type that explains the sample (corrupt, outlier, duplicate)"
        base = f"label looks wrong ({self.detector_} score {self.scores_[i]:.3g})"
        if self._pred is None:
            return base
        name = self._names[int(self._pred[i])] if int(self._pred[i]) < len(self._names) else "?"
        conf = "" if self._conf is None else f" at {float(self._conf.iloc[i]):.0%}"
        return f"{base}: the model predicts {name}{conf}"


def _after_the_flagged(
    values: np.ndarray, deferred: np.ndarray, n_flag: int
) -> tuple[np.ndarray, int]:
    """(N,) scores with the ``deferred`` samples that would be flagged moved just below the
    lowest flagged other sample (in their own order; lower scores unchanged, so the ranking
    below the flags is the detector's), and the number flagged less as many."""
    top = np.lexsort((np.arange(len(values)), -values))[:n_flag]
    n_flag -= int(deferred[top].sum())
    rest = np.sort(values[~deferred])[::-1]
    if not n_flag or not rest.size:
        return values, n_flag
    cap = float(np.nextafter(rest[min(n_flag, rest.size) - 1], -np.inf))
    above = deferred & (values >= cap)
    if above.any():  # squeezed into [cap - 1e-9 * spread, cap), their order kept
        spread = float(values[above].max() - values[above].min()) or 1.0
        squeezed = cap - 1e-9 * abs(cap or 1.0) * (values[above].max() - values[above]) / spread
        values = values.copy()
        values[above] = np.minimum(squeezed, cap)
    return values, n_flag


def explained_elsewhere(context: IssueContext) -> np.ndarray:
    """(N,) bool: samples another fitted issue type explains better than a wrong label: flagged
    corrupt or outlier (an unreadable or out-of-distribution input has no right class among the
    labels), or a member of a duplicate set whose given labels differ (the set's card decides
    which copy keeps which label)."""
    out = np.zeros(context.n, dtype=bool)
    for name in ("corrupt", "outlier"):
        est = context.results.get(name)
        if est is not None:
            out |= np.asarray(est.flagged_, dtype=bool)
    dup = context.results.get("duplicate")
    if dup is not None:
        out |= conflicting_sets(dup.set_ids_, context.labels) & np.asarray(dup.flagged_, dtype=bool)
    return out

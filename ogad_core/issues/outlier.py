"""``outlier``: out-of-distribution and atypical inputs, by Mahalanobis distance to the classes.

Per neighbour space, the squared Mahalanobis distance to the nearest class mean under one shared
within-class covariance (Lee et al. 2018; Ledoit-Wolf shrinkage,
:mod:`ogad_core.issues.mahalanobis`): the standard out-of-distribution score on a trained
model's features, and on sentence embeddings (Podolskiy et al. 2021). Rows are scaled to unit
length first in the model's spaces (an input far from the data has a small ``h``, so in raw
feature space out-of-distribution inputs sit near the origin, among the low-confidence clean
ones). The spaces are put on one scale by a z-score of the log distance against its own upper
tail (:func:`ogad_core.issues.tail.upper_z`: the skewed tail of a distance does not inflate the
flags), and a sample's score is its largest z over the spaces.

Measured on mnist5k with photo crops and drawn letters mixed in, and on Rotten Tomatoes with
sentences from another domain (docs/benchmarks.md, "Issue types"): the Mahalanobis distance in
unit feature space ranks the drawn letters above the atypical clean digits that a kNN distance
(cleanlab Datalab's outlier score) puts among them. An input the ``corrupt`` type flags (when it
runs too) that is also far from every class stays flagged here, ranked after the outliers no
other type explains: a very bright photo crop among digits is both, and a reviewer of the
outlier queue sees every input unlike the data, the ones no other queue holds first.
"""

from __future__ import annotations

import numpy as np

from ogad_core.errors import ConfigError
from ogad_core.issues.base import IssueContext, IssueType
from ogad_core.issues.mahalanobis import class_mahalanobis
from ogad_core.issues.tail import upper_z

SPACE_NAMES = {
    "features": "feature",
    "embeddings": "encoder",
    "gradients": "gradient",
    "pixels": "pixel",
}


class OutlierIssue(IssueType):
    """Outliers.

    Args:
        spaces: spaces measured in (any of ``features``, ``embeddings``, ``gradients``,
            ``pixels``; all but pixels are compared in direction, rows scaled to unit length).
            With the encoder's embeddings, those replace the features; without features,
            gradients are used; spaces a run lacks are skipped.
        combine: ``mean`` (far in every space: an atypical but clean input is far in one
            view, the model's or the raw input's, an input from elsewhere in both) or ``max``
            (far in some space) of the spaces' z-scores.
        threshold: flagged at a combined upper-tail z-score
            (:func:`~ogad_core.issues.tail.upper_z`) of the log distance of at least this.
    """

    name = "outlier"
    title = "Outliers"
    after = ("corrupt",)
    threshold_doc = (
        "Mahalanobis distance to the nearest class mean (shared Ledoit-Wolf covariance) in "
        "unit-length feature space (text: the encoder's embeddings) and in pixel space, each "
        "as a z-score of its log against the upper half of its own distribution, averaged "
        "over the spaces; flagged at z >= 2.5 (at most about 0.6% of a clean bulk)"
    )

    def __init__(
        self,
        spaces: tuple[str, ...] = ("features", "embeddings", "pixels"),
        combine: str = "mean",
        threshold: float = 2.5,
    ) -> None:
        self.spaces = spaces
        self.combine = combine
        self.threshold = threshold

    def fit(self, context: IssueContext) -> OutlierIssue:
        if self.combine not in ("mean", "max"):
            raise ConfigError(f"outlier: combine must be mean or max, not {self.combine!r}")
        zs, used = [], []
        for space in self._spaces(context):
            matrix = context.space(space if space == "pixels" else f"{space}/unit")
            if matrix is None:
                continue
            dist = class_mahalanobis(matrix, context.labels, seed=context.seed)
            zs.append(upper_z(np.log(np.maximum(dist, 1e-12))))
            used.append(space)
        self.spaces_used_ = used
        self.space_z_ = np.stack(zs, axis=1) if zs else np.zeros((context.n, 0))
        if not zs:
            self.deferred_ = np.zeros(context.n, dtype=bool)
            self._finish(np.zeros(context.n), np.inf)
            return self
        scores = self.space_z_.max(axis=1) if self.combine == "max" else self.space_z_.mean(1)
        corrupt = context.results.get("corrupt")
        self.deferred_ = np.zeros(context.n, dtype=bool)
        if corrupt is not None:  # damaged and far: in both queues, here after the others
            self.deferred_ = np.asarray(corrupt.flagged_, dtype=bool)
            scores = after_the_others(scores, self.deferred_, self.threshold)
        self._finish(scores, self.threshold)
        return self

    def _spaces(self, context: IssueContext) -> list[str]:
        """The spaces measured: the encoder's embeddings replace the features, gradients
        stand in for missing features."""
        spaces = list(self.spaces)
        if "embeddings" in spaces and context.space("embeddings") is not None:
            spaces = [s for s in spaces if s != "features"]  # the encoder's own geometry
        elif "features" in spaces and context.space("features") is None:
            spaces = [("gradients" if s == "features" else s) for s in spaces]
        return list(dict.fromkeys(spaces))

    def explain(self, i: int) -> str:
        if not self.spaces_used_:
            return "no space to measure outliers in"
        names = [SPACE_NAMES.get(s, s) for s in self.spaces_used_]
        zs = ", ".join(f"{n} z = {z:.1f}" for n, z in zip(names, self.space_z_[i], strict=True))
        line = f"far from every class ({zs})"
        return f"{line}; also corrupt (after the others)" if self.deferred_[i] else line


def after_the_others(scores: np.ndarray, others: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) scores with the ``others`` rows (flagged by another type) that reach ``threshold``
    moved just below the lowest flagged row of the rest, their order kept: still flagged,
    ranked after the outliers no other type explains. Rows below the threshold unchanged."""
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

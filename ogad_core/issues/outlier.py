"""``outlier``: out-of-distribution and atypical inputs, by their distance from the classes.

Per space, the squared Mahalanobis distance to the nearest class mean under one shared
within-class covariance (Lee et al. 2018; Ledoit-Wolf shrinkage,
:mod:`ogad_core.issues.mahalanobis`) in the model's unit-length features and in pixel space;
in an encoder's embeddings (text; pretrained image encoders), which were not trained on these
labels, the mean distance to the k nearest samples (cleanlab Datalab's outlier score): topics
spread a class over many modes there, and the Gaussian class model ranked sentences from
another domain worse (measured, docs/benchmarks.md "Issue types"). Each space's distance is a
z-score of its log against its own upper tail (:func:`ogad_core.issues.tail.upper_z`: the skewed
tail of a distance does not inflate the flags), and the spaces' z-scores are averaged: an
atypical but clean digit is far in one view, the model's or the raw input's, an input from
elsewhere in both. The model's features are scaled to unit length (an input far from the data
has a small ``h``, so in raw feature space it sits near the origin, among the low-confidence
clean ones).

An input the ``corrupt`` type flags (when it runs too) that is also far from the classes stays
flagged here, ranked after the outliers no other type explains: a very bright photo crop among
digits is both, and a reviewer of the outlier queue sees every input unlike the data, the ones
no other queue holds first.
"""

from __future__ import annotations

import numpy as np

from ogad_core.errors import ConfigError
from ogad_core.issues.base import REFERENCE_ROWS, IssueContext, IssueType, default_k
from ogad_core.issues.mahalanobis import class_mahalanobis
from ogad_core.issues.tail import upper_z
from ogad_core.space.knn import ANN_MIN_ROWS

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
        "unit-length feature space and in pixel space (an encoder's embeddings: mean distance "
        "to the k nearest samples), each as a z-score of its log against the upper half of its "
        "own distribution, averaged over the spaces; flagged at z >= 2.5 (at most about 0.6% "
        "of a clean bulk)"
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
            dist = _distance(context, space)
            if dist is None:
                continue
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


def _distance(context: IssueContext, space: str) -> np.ndarray | None:
    """(N,) distance of each sample from the data in ``space`` (None when the run lacks it):
    the Mahalanobis distance to the nearest class for the model's own (trained) spaces and
    pixels; for an encoder's embeddings, not trained on these labels (classes are not one
    Gaussian each there: topics spread them), the mean distance to the k nearest samples
    (cleanlab's outlier score; above ANN_MIN_ROWS rows in a 16-d PCA, among a seeded
    REFERENCE_ROWS subsample)."""
    if space == "embeddings":
        reference = min(context.n, REFERENCE_ROWS)
        name = "embeddings/unit" + ("/pca" if context.n > ANN_MIN_ROWS else "")
        found = context.neighbours(name, default_k(reference), reference=reference)
        return None if found is None else found[0].mean(axis=1).astype(np.float64)
    matrix = context.space(space if space == "pixels" else f"{space}/unit")
    if matrix is None:
        return None
    return class_mahalanobis(matrix, context.labels, seed=context.seed)


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

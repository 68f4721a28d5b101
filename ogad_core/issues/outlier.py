"""``outlier``: out-of-distribution and atypical inputs, from kNN distances.

cleanlab Datalab's outlier score per neighbour space: the mean distance to the ``k`` nearest
other samples over the median of that mean (``cleanlab.outlier.OutOfDistribution``'s feature
score before its ``exp(-x)``), here on the faiss neighbour graph shared by the issue types. The
spaces are put on one scale by a robust z-score of the log ratio, and a sample's score is its
largest z over the spaces. Inputs the ``corrupt`` type flags (when it runs too) are left to
it: an unreadable input is reviewed once, as corrupt.

Measured on mnist5k with photo crops and drawn letters mixed in (docs/benchmarks.md, "Issue
types"): the model's features work once each row is scaled to unit length (an input far from
the data has a small ``h``, so in raw feature or gradient space the out-of-distribution inputs
sit together near the origin and are each other's neighbours); ``k`` grows with N (1%) so that
a source of a few dozen similar outliers cannot hide in its own neighbourhood. Without features
(projected gradients) the unit-length gradients stand in. Text runs add the encoder's own
embeddings (the head standardises them, which blurs the encoder's geometry: sentences from
another domain, AUROC 0.973 in the head's features, 0.996 in the encoder's). Above
ANN_MIN_ROWS rows the neighbours are searched in a 16-d PCA of each space (as the duplicate
type's candidates): the issue pass at 1M rows stays within 2x the evidence build.
"""

from __future__ import annotations

import numpy as np

from ogad_core.issues.base import REFERENCE_ROWS, IssueContext, IssueType, default_k, robust_z
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
        spaces: neighbour spaces (any of ``features``, ``embeddings``, ``gradients``,
            ``pixels``; all but pixels are compared in direction, rows scaled to unit length).
            With the encoder's embeddings, those replace the features; without features,
            gradients are used; spaces a run lacks are skipped.
        k: neighbours averaged (None: 1% of the rows searched, at least 10 and at most 50;
            above 100,000 rows a seeded subsample of 100,000 is searched).
        threshold: flagged at a robust z-score of at least this in some space.
    """

    name = "outlier"
    title = "Outliers"
    after = ("corrupt",)
    threshold_doc = (
        "mean distance to the k nearest samples (k = 1% of N, 10 to 50; cleanlab's outlier "
        "score) in unit-length feature space or pixel space, as a robust z-score of its log; "
        "flagged at z >= 2.5 (about 1% of clean mnist5k digits)"
    )

    def __init__(
        self,
        spaces: tuple[str, ...] = ("features", "embeddings", "pixels"),
        k: int | None = None,
        threshold: float = 2.5,
    ) -> None:
        self.spaces = spaces
        self.k = k
        self.threshold = threshold

    def fit(self, context: IssueContext) -> OutlierIssue:
        zs, used = [], []
        reference = min(context.n, REFERENCE_ROWS)
        k = self.k or default_k(reference)
        spaces = list(self.spaces)
        if "embeddings" in spaces and context.space("embeddings") is not None:
            spaces = [s for s in spaces if s != "features"]  # the encoder's own geometry
        elif "features" in spaces and context.space("features") is None:
            spaces = [("gradients" if s == "features" else s) for s in spaces]
        for space in dict.fromkeys(spaces):
            name = space if space == "pixels" else f"{space}/unit"
            if context.n > ANN_MIN_ROWS:  # many rows: the density in a 16-d PCA of the space
                name += "/pca"
            found = context.neighbours(name, k, reference=reference)
            if found is None:
                continue
            avg = found[0].mean(axis=1).astype(np.float64)
            ratio = avg / max(float(np.median(avg)), 1e-12)
            zs.append(robust_z(np.log(np.maximum(ratio, 1e-6))))
            used.append(space)
        self.k_ = k
        if not zs:
            self.spaces_used_, self.space_z_ = [], np.zeros((context.n, 0))
            self._finish(np.zeros(context.n), np.inf)
            return self
        self.space_z_ = np.stack(zs, axis=1)
        self.spaces_used_ = used
        scores = self.space_z_.max(axis=1)
        corrupt = context.results.get("corrupt")
        self.deferred_ = np.zeros(context.n, dtype=bool)
        if corrupt is not None:  # an unreadable input is a corrupt one, not also an outlier
            self.deferred_ = np.asarray(corrupt.flagged_, dtype=bool)
            scores = np.where(self.deferred_, np.minimum(scores, 0.0), scores)
        self._finish(scores, self.threshold)
        return self

    def explain(self, i: int) -> str:
        if not self.spaces_used_:
            return "no neighbour space to measure outliers in"
        if self.deferred_[i]:
            return "left to the corrupt issue type"
        j = int(self.space_z_[i].argmax())
        space = SPACE_NAMES.get(self.spaces_used_[j], self.spaces_used_[j])
        return f"far from every other sample in {space} space (z = {self.space_z_[i, j]:.1f})"

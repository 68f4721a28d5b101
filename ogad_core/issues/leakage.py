"""``leakage``: training samples that are copies of files in the held-out split.

A model scored on a validation or test split that holds copies of its training samples looks
better than it is (FiftyOne Brain's "leaky splits"). With ``--holdout SPEC`` (:mod:`.holdout`)
each training sample is compared with the held-out files: an exact copy has the same content
hash (decoded pixels, or normalised text); a near copy of an image lies closer to a held-out
image than ``threshold`` x the median nearest-neighbour distance among the training images in
pixel space (the duplicate type's rule, cleanlab's 0.13), or than ``isolation`` x its distance
to the nearest other training image and ``isolation_cap`` x that median (the duplicate type's
isolated pair: a JPEG re-encoded copy lies past 0.13 x the median, yet far closer to its
source than to anything else), or when their registration images align as a shifted, rotated
or rescaled copy of one of the training image's ``verify_k`` nearest held-out images (in pixels
and in the Fourier magnitude of the pixels; the duplicate type's verification). A training
text leaks when its words (lower case, no punctuation) are those of a held-out text up to one
word edit per ``words_per_edit`` words (the duplicate type's text verification; the held-out
texts have no embeddings, so the candidates are the texts that share the words or the words
with one left out, :func:`~ogad_core.issues.text_match.best_matches`). The training
samples that leak the
same held-out file form one set (``set_id``: the smallest of their sample ids). Inputs the
``corrupt`` type flags are left to it (two blank images are not a leak). Without a held-out
split the type flags nothing.
"""

from __future__ import annotations

import numpy as np

from ogad_core.issues.base import IssueContext, IssueType
from ogad_core.issues.text_match import WORDS_PER_EDIT


class LeakageIssue(IssueType):
    """Train / held-out leakage.

    Args:
        threshold: near copies lie closer than this x the median nearest-neighbour distance
            of the training images in pixel space.
        isolation: ... or closer than this x the training image's distance to its nearest
            other training image (0 switches this off),
        isolation_cap: ... and than this x that median.
        verify: ... or, aligned, 1 - NCC of the registration images below this (0: off).
        verify_k: held-out candidates per training image and space.
        words_per_edit: a text leaks when its words are a held-out text's up to one word edit
            per this many words (0: off).
    """

    name = "leakage"
    title = "Leakage"
    after = ("corrupt",)
    threshold_doc = (
        "an exact copy (same decoded pixels or normalised text) of a held-out file, or an image "
        "closer to one than 0.13 x the median nearest-neighbour distance of the training images "
        "in pixel space, or closer than 0.33 x its distance to any other training image and 0.5 "
        "x that median, or aligned as a shifted, rotated or rescaled copy of one (1 - NCC "
        "after registration < 0.0017), or a text whose words (lower case, no punctuation) are "
        "a held-out text's up to one word edit per 5 words; score = 1 / (1 + distance / "
        "that), flagged at >= 0.5"
    )

    def __init__(
        self,
        threshold: float = 0.13,
        isolation: float = 0.33,
        isolation_cap: float = 0.5,
        verify: float = 0.0017,
        verify_k: int = 3,
        words_per_edit: int = WORDS_PER_EDIT,
    ) -> None:
        self.threshold = threshold
        self.isolation = isolation
        self.isolation_cap = isolation_cap
        self.verify = verify
        self.verify_k = verify_k
        self.words_per_edit = words_per_edit

    def fit(self, context: IssueContext) -> LeakageIssue:
        n = context.n
        ratio = np.full(n, np.inf)  # distance to the nearest held-out file / (threshold * median)
        nearest = np.full(n, -1, dtype=np.int64)
        holdout = context.holdout
        self._refs: list[str] = [] if holdout is None else list(holdout.refs)
        if holdout is not None and len(self._refs):
            self._exact(context, ratio, nearest)
            self._near(context, ratio, nearest)
            self._verified(context, ratio, nearest)
            self._matched_texts(context, ratio, nearest)
        corrupt = context.results.get("corrupt")
        if corrupt is not None:
            ratio[np.asarray(corrupt.flagged_, dtype=bool)] = np.inf
        leaked = ratio < 1.0
        nearest[~leaked] = -1
        self.nearest_, self.ratio_ = nearest, ratio
        self._finish(1.0 / (1.0 + ratio), 0.5, _sets_by_target(nearest))
        return self

    def neighbour_spaces(self, context: IssueContext) -> set[str]:
        """The training images' pixel neighbours, when there is a held-out split."""
        return set() if context.holdout is None else {"pixels"}

    def _exact(self, context: IssueContext, ratio: np.ndarray, nearest: np.ndarray) -> None:
        """Training samples whose content hash a held-out file shares (distance 0)."""
        assert context.holdout is not None
        if context.inputs is None or "content_hash" not in context.inputs:
            return
        held = context.holdout.inputs["content_hash"].astype(str).to_numpy()
        first = {h: j for j, h in reversed(list(enumerate(held))) if h}
        hashes = context.inputs["content_hash"].astype(str).to_numpy()
        for i, h in enumerate(hashes):
            j = first.get(h) if h else None
            if j is not None:
                ratio[i], nearest[i] = 0.0, j

    def _near(self, context: IssueContext, ratio: np.ndarray, nearest: np.ndarray) -> None:
        """Training images near a held-out image in pixel space."""
        from ogad_core.space.knn import hnsw_search, index_for

        assert context.holdout is not None
        held = context.holdout.signatures
        train = context.space("pixels")
        found = context.neighbours("pixels", 1)
        if held is None or train is None or found is None or not len(held):
            return
        median = max(float(np.median(found[0][:, 0])), 1e-12)
        held_ok = np.isfinite(held).all(axis=1)
        if not held_ok.any():
            return
        held_rows = np.flatnonzero(held_ok)
        dist, idx = hnsw_search(index_for(held[held_rows]), np.nan_to_num(train, nan=1e6), 1)
        rel = dist[:, 0] / (self.threshold * median)
        if self.isolation > 0:  # far closer to the held-out file than to any training image
            limit = np.minimum(self.isolation * found[0][:, 0], self.isolation_cap * median)
            np.minimum(rel, dist[:, 0] / np.maximum(limit, 1e-12), out=rel)
        closer = (rel < ratio) & (idx[:, 0] >= 0) & np.isfinite(train).all(axis=1)
        ratio[closer] = rel[closer]
        nearest[closer] = held_rows[idx[closer, 0]]

    def _verified(self, context: IssueContext, ratio: np.ndarray, nearest: np.ndarray) -> None:
        """Training images whose registration image aligns as a copy of one of their nearest
        held-out images (residual / ``verify`` below their ratio so far)."""
        from ogad_core.issues.base import fourier_magnitude
        from ogad_core.issues.registration import aligned_correlation, neighbour_pairs
        from ogad_core.space.knn import hnsw_search, index_for

        assert context.holdout is not None
        held, held_reg = context.holdout.signatures, context.holdout.registration
        train, train_reg = context.signatures, context.registration
        n = context.n
        if self.verify <= 0 or held is None or held_reg is None or train is None:
            return
        if train_reg is None or len(train_reg) != n or not len(held):
            return
        k = min(self.verify_k, len(held))
        found = [
            hnsw_search(index_for(np.nan_to_num(f(held))), np.nan_to_num(f(train)), k)[1]
            for f in (lambda m: np.asarray(m, np.float32), fourier_magnitude)
        ]
        pairs = neighbour_pairs(np.concatenate(found, axis=1), undirected=False)
        images = np.concatenate([np.asarray(train_reg), np.asarray(held_reg)])
        ncc = aligned_correlation(
            images, pairs + np.array([0, n]), blur_from=self.verify, workers=context.workers
        )
        rel = np.maximum(1.0 - ncc, 0.0) / self.verify  # an NCC rounds past 1 on a copy
        order = np.argsort(rel, kind="stable")[::-1]  # the best candidate written last
        pairs, rel = pairs[order], rel[order]
        better = rel < ratio[pairs[:, 0]]
        ratio[pairs[better, 0]] = rel[better]
        nearest[pairs[better, 0]] = pairs[better, 1]

    def _matched_texts(self, context: IssueContext, ratio: np.ndarray, nearest: np.ndarray) -> None:
        """Training texts whose words match a held-out text's up to the edits allowed."""
        from ogad_core.issues.text_match import best_matches

        assert context.holdout is not None
        if self.words_per_edit <= 0 or context.kind != "text" or "ref" not in context.samples:
            return
        texts = context.samples["ref"].astype(str).tolist()
        found, rel = best_matches(texts, self._refs, self.words_per_edit)
        better = (found >= 0) & (rel < ratio)
        ratio[better], nearest[better] = rel[better], found[better]

    def explain(self, i: int) -> str:
        j = int(self.nearest_[i])
        if j < 0:
            return "no copy in the held-out split"
        kind = "exact copy" if self.ratio_[i] == 0 else "near copy"
        others = int((self.nearest_ == j).sum()) - 1
        also = f" (as are {others} other training samples)" if others else ""
        return f"{kind} of held-out {self._refs[j]}{also}: the held-out score is inflated"


def _sets_by_target(nearest: np.ndarray) -> np.ndarray:
    """(N,) set ids: the smallest sample id among the samples leaking the same held-out file,
    -1 for the others."""
    out = np.full(len(nearest), -1, dtype=np.int64)
    rows = np.flatnonzero(nearest >= 0)
    if not len(rows):
        return out
    targets, inverse = np.unique(nearest[rows], return_inverse=True)
    first = np.full(len(targets), np.iinfo(np.int64).max)
    np.minimum.at(first, inverse, rows)
    out[rows] = first[inverse]
    return out

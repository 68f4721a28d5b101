"""``duplicate``: exact and near duplicates, reported as sets (``set_id``).

Exact: equal content hashes (decoded pixels, or normalised text; inputs.parquet). Near: a pair
closer than ``threshold`` x the median nearest-neighbour distance in a neighbour space (the
pixel signatures, the model's features and an encoder's embeddings when the run has them;
cleanlab Datalab's near-duplicate rule, whose default threshold is 0.13), on the faiss neighbour
graph shared by the issue types. In the spaces of the input itself (pixels, an encoder's
embeddings) also an *isolated pair* (Lowe's ratio test, as in image matching): two samples that
are each other's nearest neighbour, closer than ``isolation`` x either one's distance to any
third sample and than ``isolation_cap`` x the median. A re-encoded copy is one: JPEG at quality
30 lies at 0.16-0.32 x the median, past the 0.13 rule, yet at a quarter of the distance to any
other digit; a review with its punctuation removed or a word dropped at 0.26-0.29 x. Pairs join
into sets (connected components); a set whose given labels differ is a *conflict* and ranks first.

A shifted, rotated or rescaled copy lies at an ordinary neighbour's distance in every one of
these spaces (a 1-2 pixel shift of a digit at 1.4-2.0 x the median). So each image's
``verify_k`` nearest in the pixels, the model's features and the shift-invariant Fourier
magnitude of the pixels are *candidates*, and a candidate pair is a duplicate when its
registration images align (:mod:`ogad_core.issues.registration`: a similarity transform, then
the residual 1 - NCC) closer than ``verify``: geometric verification, as in image matching. A
copy made by a light blur (a softened re-export, a resized thumbnail) aligns once its sharper
source is blurred alike (the registration's sharpness matching, for pairs above ``verify``).
A text re-typed in capitals, stripped of its punctuation or with a word left out lies at
0.26-0.29 x the median in the encoder's embeddings (past the 0.13 rule), yet its source is its
nearest. So each text's ``verify_k`` nearest in ``text_spaces`` are candidates too, and a
candidate pair is a duplicate when their words are the same up to one word edit per
``words_per_edit`` words (:mod:`ogad_core.issues.text_match`).
Inputs the ``corrupt`` type flags (when it runs too) join no set: two blank images are corrupt.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ogad_core._internal import row_chunks
from ogad_core.issues.base import PCA_DIM, REFERENCE_ROWS, IssueContext, IssueType
from ogad_core.issues.text_match import WORDS_PER_EDIT

#: a set's members score at least this (0.5) plus 1 when their given labels differ
CONFLICT_BONUS = 1.0
#: candidates per image and space verified above REFERENCE_ROWS images (``verify_k`` where
#: smaller): the alignment of every candidate pair is the largest part of the issue pass at
#: scale (13.4M pairs at 1,000,000 images). 250,000 rows of ``bench_issues --scale --images``:
#: 4 of the 6 nearest verify 30% fewer pairs, the planted copies' pairs verified 0.888 -> 0.885
#: (1: 0.851, 2: 0.877, 3: 0.882, 5: 0.886)
LARGE_VERIFY_K = 4


class DuplicateIssue(IssueType):
    """Duplicate sets.

    Args:
        threshold: near duplicates lie closer than this x the space's median nearest-neighbour
            distance (cleanlab's ``NearDuplicateIssueManager`` default, 0.13).
        spaces: the neighbour spaces searched for near duplicates.
        k: neighbours searched per sample.
        isolation: an isolated pair lies closer than this x the distance of either member to
            its next nearest sample (0 switches the rule off).
        isolation_cap: ... and closer than this x the space's median nearest-neighbour distance.
        isolation_spaces: the spaces where isolated pairs count: those of the input itself, its
            pixels and an encoder's embeddings (in the features of a model trained on these
            labels two different inputs can fall together).
        verify: a candidate pair of images is a duplicate when, aligned, 1 - NCC of their
            registration images stays below this (0 switches verification off).
        verify_k: candidates per image and space.
        verify_spaces: the spaces whose neighbours are candidates.
        words_per_edit: a candidate pair of texts is a duplicate when their words (lower case,
            no punctuation) differ by at most one word edit per this many words of the longer
            (0 switches the text verification off).
        text_spaces: the spaces whose neighbours are a text's candidates.
    """

    name = "duplicate"
    title = "Duplicates"
    after = ("corrupt",)
    threshold_doc = (
        "an exact copy (same decoded pixels or normalised text), or closer than 0.13 x the median "
        "nearest-neighbour distance in pixel, feature or embedding space, or in pixel or "
        "embedding space a mutual nearest pair closer than 0.33 x either one's next neighbour "
        "and 0.5 x the median, or two images that align as a shifted, rotated, rescaled or "
        "lightly blurred copy (1 - NCC after registration < 0.0017, the sharper one blurred to "
        "the other's sharpness where it is 1.5 x as sharp), or two texts among each other's 6 "
        "nearest embeddings whose words (lower case, no punctuation) differ by at most one "
        "word inserted, deleted or replaced per 5 words; score >= 0.5, +1 when the set's "
        "labels differ"
    )

    def __init__(
        self,
        threshold: float = 0.13,
        spaces: tuple[str, ...] = ("pixels", "features/unit", "embeddings/unit"),
        k: int = 5,
        isolation: float = 0.33,
        isolation_cap: float = 0.5,
        isolation_spaces: tuple[str, ...] = ("pixels", "embeddings/unit"),
        verify: float = 0.0017,
        verify_k: int = 6,
        verify_spaces: tuple[str, ...] = ("pixels", "features/unit", "pixels/fourier/unit"),
        words_per_edit: int = WORDS_PER_EDIT,
        text_spaces: tuple[str, ...] = ("embeddings/unit",),
    ) -> None:
        self.threshold = threshold
        self.spaces = spaces
        self.k = k
        self.isolation = isolation
        self.isolation_cap = isolation_cap
        self.isolation_spaces = isolation_spaces
        self.verify = verify
        self.verify_k = verify_k
        self.verify_spaces = verify_spaces
        self.words_per_edit = words_per_edit
        self.text_spaces = text_spaces

    def fit(self, context: IssueContext) -> DuplicateIssue:
        self._searched: dict[str, tuple[np.ndarray, np.ndarray] | None] | None = {}
        try:  # each space's candidates are searched once in a fit, for every rule
            return self._fit(context)
        finally:
            self._searched = None

    def _fit(self, context: IssueContext) -> DuplicateIssue:
        n = context.n
        ratio = np.full(n, np.inf)  # nearest duplicate distance / (threshold * median)
        self.candidate_pairs_ = 0  # the pairs verified (set by the verification)
        pairs = [self._exact_pairs(context, ratio)]
        for space in self.spaces:
            pairs.append(self._near_pairs(context, space, ratio))
        if context.kind == "text":
            verified = self._matched_texts(context, ratio)
        else:
            verified = self._verified_pairs(context, ratio)
        words = f"same words up to case, punctuation or 1 word in {self.words_per_edit}"
        how = words if context.kind == "text" else "aligned by a shift, rotation or rescale"
        self._matched_how = f"near duplicate ({how})"
        self._aligned = np.zeros(n, dtype=bool)
        self._aligned[verified.ravel()] = True
        pairs.append(verified)
        edges = np.concatenate(pairs, axis=0) if pairs else np.empty((0, 2), np.int64)
        corrupt = context.results.get("corrupt")
        if corrupt is not None:  # two blank or unreadable inputs are corrupt, not a set
            drop = np.asarray(corrupt.flagged_, dtype=bool)
            edges = edges[~(drop[edges[:, 0]] | drop[edges[:, 1]])]
            ratio[drop] = np.inf
        set_ids = _components(edges, n)
        labels = context.labels
        conflict = conflicting_sets(set_ids, labels)
        scores = 1.0 / (1.0 + ratio) + CONFLICT_BONUS * conflict
        self._labels, self._names = labels, list(context.label_names)
        self._refs = (
            context.samples["ref"].astype(str).to_numpy() if "ref" in context.samples else None
        )
        self._finish(scores, 0.5, set_ids)
        self._exact = ratio == 0
        return self

    def _exact_pairs(self, context: IssueContext, ratio: np.ndarray) -> np.ndarray:
        """Pairs (member, first member) of every group of equal content hashes."""
        if context.inputs is None or "content_hash" not in context.inputs:
            return np.empty((0, 2), np.int64)
        hashes = context.inputs["content_hash"].astype(str).to_numpy()
        valid = hashes != ""
        _, first, inverse, counts = np.unique(
            hashes, return_index=True, return_inverse=True, return_counts=True
        )
        dup = valid & (counts[inverse] > 1)
        rows = np.flatnonzero(dup)
        ratio[rows] = 0.0
        return np.stack([rows, first[inverse[rows]]], axis=1).astype(np.int64)

    def _near_pairs(self, context: IssueContext, space: str, ratio: np.ndarray) -> np.ndarray:
        found = self._candidates(context, space)
        if found is None:
            return np.empty((0, 2), np.int64)
        dist, idx = found
        median = max(float(np.median(dist[:, 0])), 1e-12)
        rel = dist / (self.threshold * median)
        if self.isolation > 0 and space in self.isolation_spaces and dist.shape[1] >= 2:
            np.minimum(rel[:, 0], self._isolated(dist, idx, median), out=rel[:, 0])
        np.minimum(ratio, rel[:, 0], out=ratio)
        rows, cols = np.nonzero(rel < 1.0)
        return np.stack([rows, idx[rows, cols]], axis=1).astype(np.int64)

    def _verified_pairs(self, context: IssueContext, ratio: np.ndarray) -> np.ndarray:
        """(M, 2) candidate pairs whose registration images align as a copy; ``ratio`` takes
        each candidate's residual / ``verify`` where that is smaller."""
        from ogad_core.issues.registration import aligned_correlation

        images = context.registration
        if self.verify <= 0 or images is None or len(images) != context.n:
            return np.empty((0, 2), np.int64)
        pairs = self._verify_candidates(context, k=self._image_verify_k(context.n))
        self.candidate_pairs_ = len(pairs)
        if not len(pairs):
            return pairs
        ncc = aligned_correlation(images, pairs, blur_from=self.verify, workers=context.workers)
        rel = np.maximum(1.0 - ncc, 0.0) / self.verify  # an NCC rounds past 1 on a copy
        np.minimum.at(ratio, pairs[:, 0], rel)
        np.minimum.at(ratio, pairs[:, 1], rel)
        return pairs[rel < 1.0]

    def _matched_texts(self, context: IssueContext, ratio: np.ndarray) -> np.ndarray:
        """(M, 2) candidate pairs of texts whose words match up to the edits allowed; ``ratio``
        takes each candidate's edit ratio (:func:`~ogad_core.issues.text_match.edit_ratio`)
        where that is smaller."""
        from ogad_core.issues.text_match import edit_ratio, word_strings

        if self.words_per_edit <= 0 or "ref" not in context.samples:
            return np.empty((0, 2), np.int64)
        pairs = self._verify_candidates(context, self.text_spaces)
        self.candidate_pairs_ = len(pairs)
        if not len(pairs):
            return pairs
        coded = word_strings(context.samples["ref"].astype(str).tolist())
        rel = edit_ratio(coded, pairs, self.words_per_edit)
        np.minimum.at(ratio, pairs[:, 0], rel)
        np.minimum.at(ratio, pairs[:, 1], rel)
        return pairs[rel < 1.0]

    def _image_verify_k(self, n: int) -> int:
        """The candidates per image and space verified among ``n`` images: ``verify_k``, at
        most LARGE_VERIFY_K above REFERENCE_ROWS images."""
        return min(self.verify_k, LARGE_VERIFY_K) if n > REFERENCE_ROWS else self.verify_k

    def _verify_candidates(
        self, context: IssueContext, spaces: tuple[str, ...] | None = None, k: int | None = None
    ) -> np.ndarray:
        """(M, 2) unique pairs (i < j) of each input and its ``k`` (default ``verify_k``)
        nearest in each of ``spaces`` (default ``verify_spaces``), both decoded."""
        from ogad_core.issues.registration import neighbour_pairs

        n = context.n
        k = self.verify_k if k is None else k
        spaces = self.verify_spaces if spaces is None else spaces
        found = [self._candidates(context, space, k) for space in spaces]
        idx = np.concatenate([f[1][:, :k] for f in found if f is not None] or [np.empty((n, 0))], 1)
        pairs = neighbour_pairs(idx, undirected=True)
        if context.inputs is not None and "decoded" in context.inputs:
            ok = context.inputs["decoded"].to_numpy(dtype=bool)
            pairs = pairs[ok[pairs[:, 0]] & ok[pairs[:, 1]]]
        return pairs.astype(np.int64)

    def _isolated(self, dist: np.ndarray, idx: np.ndarray, median: float) -> np.ndarray:
        """(N,) each row's distance to its nearest neighbour over the isolated-pair limit
        (below 1: the two are each other's nearest, closer than ``isolation`` x either one's
        second-nearest distance and ``isolation_cap`` x ``median``); inf for the others.
        ``dist``, ``idx``: (N, k >= 2) neighbours, nearest first."""
        n = len(dist)
        first, second, j = dist[:, 0], dist[:, 1], idx[:, 0]
        out = np.full(n, np.inf)
        valid = (j >= 0) & np.isfinite(first) & np.isfinite(second)
        rows = np.flatnonzero(valid)
        mutual = rows[idx[j[rows], 0] == rows]
        limit = np.minimum(
            self.isolation * np.maximum(second[mutual], second[j[mutual]]),
            self.isolation_cap * median,
        )
        out[mutual] = first[mutual] / np.maximum(limit, 1e-12)
        return out

    def _candidates(
        self, context: IssueContext, space: str, k: int | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(N, k) distances and indices of each row's k (default ``self.k``) nearest others
        in ``space``, nearest first: the first k of one search a space at ``max(k, verify_k)``
        (:meth:`_search`; within a fit, made once and kept for every rule)."""
        k = self.k if k is None else k
        searched = getattr(self, "_searched", None)
        found = None if searched is None else searched.get(space)
        if found is None or found[1].shape[1] < k:
            found = self._search(context, space, max(k, self.k, self.verify_k))
            if searched is not None:
                searched[space] = found
        return None if found is None else (found[0][:, :k], found[1][:, :k])

    def _search(
        self, context: IssueContext, space: str, k: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(N, k) distances and indices of each row's k nearest others in ``space``; above
        ANN_MIN_ROWS rows the candidates come from a 16-d PCA of the space (a 2-3x cheaper
        graph), re-ordered by the distance in the space itself (the PCA's order is
        approximate; ``--verify 100000``'s planted copies found: 93.3% and 92.7% in two runs,
        91.6% in one with the PCA's first k). The space is built once for both."""
        from ogad_core.space.knn import ANN_MIN_ROWS

        full = context.space(space)
        if full is None:
            return None
        if context.n <= ANN_MIN_ROWS or full.shape[1] <= PCA_DIM:
            return context.neighbours(space, k, build=lambda: full)
        found = context.neighbours(f"{space}/pca", k, build=lambda: context.pca(full))
        if found is None:
            return None
        idx = found[1]  # all searched: sorted by the exact distance
        dist = _exact_distances(full, idx)
        order = np.argsort(dist, axis=1, kind="stable")
        return np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)

    def neighbour_spaces(self, context: IssueContext) -> set[str]:
        """The near-duplicate spaces and the candidate spaces of the verification."""
        return {*self.spaces, *self.verify_spaces, *self.text_spaces}

    def explain(self, i: int) -> str:
        sid = int(self.set_ids_[i])
        if sid < 0:
            return "no duplicate found"
        members = np.flatnonzero(self.set_ids_ == sid)
        others = [int(m) for m in members if m != i][:4]
        kind = "exact copy" if self._exact[i] else "near duplicate"
        if not self._exact[i] and self._aligned[i]:
            kind = self._matched_how
        names = sorted({self._names[int(self._labels[m])] for m in members})
        labels = f"; labels differ: {' vs '.join(names)}" if len(names) > 1 else ""
        more = "" if len(members) - 1 <= 4 else f" and {len(members) - 5} more"
        return f"{kind} of #{', #'.join(map(str, others))}{more} (set of {len(members)}{labels})"


def _exact_distances(matrix: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(N, k) distances of each row of (N, d) ``matrix`` to its candidates ``idx`` (N, k),
    nearest first after sorting each row (indices re-ordered alike by the caller); in row
    chunks of about CHUNK_BYTES of gathered candidates (a fixed 65,536 rows held 7 GiB at
    100,000 photos)."""
    n, k = idx.shape
    d = matrix.shape[1]
    out = np.empty(idx.shape, dtype=np.float32)
    for rows in row_chunks(n, k * d * 4):
        diff = np.asarray(matrix[idx[rows].ravel()], np.float32).reshape(-1, k, d)
        diff -= np.asarray(matrix[rows], np.float32)[:, None, :]
        np.square(diff, out=diff)
        out[rows] = np.sqrt(diff.sum(axis=2))
    return out


def _components(edges: np.ndarray, n: int) -> np.ndarray:
    """(N,) int64 set ids: the smallest sample_id of each connected component of >= 2 samples,
    -1 for a sample without duplicates."""
    if len(edges) == 0:
        return np.full(n, -1, dtype=np.int64)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return np.where(sizes[comp] > 1, first[comp], -1).astype(np.int64)


def conflicting_sets(set_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) bool: the sample's set holds more than one given label."""
    out = np.zeros(len(set_ids), dtype=bool)
    members = set_ids >= 0
    if not members.any():
        return out
    ids, inverse = np.unique(set_ids[members], return_inverse=True)
    lo = np.full(len(ids), np.iinfo(np.int64).max)
    hi = np.full(len(ids), np.iinfo(np.int64).min)
    np.minimum.at(lo, inverse, labels[members])
    np.maximum.at(hi, inverse, labels[members])
    out[members] = (lo != hi)[inverse]
    return out

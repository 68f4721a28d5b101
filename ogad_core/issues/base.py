"""The issue-type contract (scikit-learn's estimator style) and the context every type reads.

An issue type is a class with constructor parameters only (``get_params`` / ``clone`` work, as
for a scikit-learn estimator), a ``name`` (the ``issue`` value in issues.parquet), a ``title``
(the dashboard's selector) and a ``fit(context)`` that returns ``self`` having set::

    scores_     (N,) float64, finite, HIGHER = worse
    threshold_  float: flagged_ is exactly scores_ >= threshold_
    flagged_    (N,) bool
    set_ids_    (N,) int64, -1 outside a set; samples of one set share an id (duplicates)

and ``explain(i) -> str``, the one-line reason shown on sample ``i``'s card.
:func:`ogad_core.issues.check.check_issue_type` checks all of this on small data. Optional:
``neighbour_spaces(context)``, the :meth:`IssueContext.neighbours` spaces ``fit`` reads (the pass
then releases a cached search once no type still to be fitted reads it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ogad_core._internal import row_chunks
from ogad_core.space import knn
from ogad_core.space.knn import (
    flat_index,
    hnsw_search,
    index_for,
    ivf_index,
    ivf_search_by_list,
    ivf_self_search,
)

#: above this many rows a density estimate searches a seeded subsample of this many rows
REFERENCE_ROWS = 100_000
#: dimensions of a ``/pca`` space (candidate searches on many rows)
PCA_DIM = 16
#: the neighbours of a density estimate: 1% of the rows searched, between 10 and this
MAX_K = 50


def default_k(n_rows: int) -> int:
    """k of a density estimate over ``n_rows`` rows: 1%, at least 10, at most MAX_K."""
    return int(np.clip(np.ceil(n_rows / 100), 10, MAX_K))


@dataclass
class IssueContext:
    """What a run offers the issue types (N samples, sample_id order).

    Attributes:
        samples: samples.parquet (label, pred, confidence, loss, ref, ...).
        label_names: the class names.
        kind: ``image``, ``text`` or ``tabular``.
        gradients: (N, D) gradient embeddings (memory-mapped) or None.
        features: (N, H) penultimate features of the model or None.
        embeddings: (N, E) the encoder's features (text and pretrained-encoder runs: the
            head's input before it is standardised) or None.
        embedding_blocks: the embeddings are this many equal-width blocks, first to last
            layer (a text encoder's hidden states, concatenated); 1: one block.
        inputs: inputs.parquet (per-sample input properties) or None.
        signatures: (N, 256) float32 16x16 grayscale images or None.
        registration: (N, 32, 32) uint8 grayscale images (near-duplicate verification) or None.
        scores: scores.parquet or None.
        detector: the default detector of the run (its scores are the label ranking).
        seed: seed of anything random.
        workers: threads of the duplicate and leakage types' image verification
            (``--workers``; None: :func:`~ogad_core._internal.worker_count`); the results do
            not depend on it.
    """

    samples: pd.DataFrame
    label_names: list[str]
    kind: str = "image"
    gradients: np.ndarray | None = None
    features: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    embedding_blocks: int = 1
    inputs: pd.DataFrame | None = None
    signatures: np.ndarray | None = None
    registration: np.ndarray | None = None
    scores: pd.DataFrame | None = None
    detector: str | None = None
    seed: int = 0
    workers: int | None = None
    test_accuracy: float | None = None
    #: the held-out split (``--holdout``; :class:`ogad_core.issues.holdout.Holdout`) or None
    holdout: Any = None
    #: issue types fitted so far on this context, by name (a type may defer to another)
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    _knn: dict[tuple[str, int, int | None], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False
    )
    #: the ``/pca`` spaces' (N, PCA_DIM) matrices built by a search, by name: another type's
    #: search of the same space (the duplicate type's candidates, the label type's vote in
    #: ``features/unit/pca``) reuses the PCA
    _pca_spaces: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: the registration images' flat share, once made (:meth:`flat_share`)
    _flat: np.ndarray | None = field(default=None, repr=False)
    #: the registration images' object sizes, once made (:meth:`object_sizes`)
    _sizes: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return self.samples["label"].to_numpy()

    def space(self, name: str, rows: np.ndarray | None = None) -> np.ndarray | None:
        """The (N, d) matrix of a neighbour space: ``features``, ``embeddings``, ``gradients`` or
        ``pixels``; ``/last`` keeps the last of the ``embedding_blocks`` (the encoder's last
        layer), ``/stats`` replaces pixels by their per-image statistics
        (:func:`~ogad_core.issues.features.signature_statistics`), ``/standard`` scales each
        row to zero mean and unit variance (an image's shape, whatever its brightness and
        contrast), ``/unit`` scales each row to unit length
        (a direction), ``/pca`` projects it to PCA_DIM principal components (a cheap candidate
        search), in that order; ``pixels/fourier`` is the magnitude of each signature's 2-D
        Fourier transform (its mean removed): the same for a shifted copy. ``rows``: only these
        (M,) rows of it, (M, d), without the others' work (not with ``/stats`` or ``/pca``,
        fitted on every row)."""
        base, *flags = name.split("/")
        matrix = {
            "features": self.features,
            "embeddings": self.embeddings,
            "gradients": self.gradients,
            "pixels": self.signatures,
        }.get(base)
        if matrix is None or len(matrix) != self.n or self.n < 3:
            return None
        if rows is not None:  # each flag but /stats and /pca works row by row
            if "pca" in flags or "stats" in flags:
                raise ValueError(f"space {name!r} is fitted on every row, not some")
            matrix = matrix[rows]
        if "fourier" in flags and base == "pixels":
            matrix = fourier_magnitude(matrix)
        if "last" in flags and base == "embeddings" and self.embedding_blocks > 1:
            matrix = matrix[:, -(matrix.shape[1] // self.embedding_blocks) :]
        if "stats" in flags and base == "pixels":
            from ogad_core.issues.features import signature_statistics

            sizes = self.object_sizes()
            matrix = signature_statistics(
                matrix,
                self.registration,
                flat=self.flat_share(),
                size=None if sizes is None else sizes[:, 0],
            )
        if "standard" in flags:
            matrix = np.asarray(matrix, dtype=np.float32)
            centred = matrix - matrix.mean(axis=1, keepdims=True)
            matrix = centred / np.maximum(centred.std(axis=1, keepdims=True), 1e-3)
        if "unit" in flags:
            matrix = np.asarray(matrix, dtype=np.float32)
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        if "pca" in flags:
            matrix = self.pca(matrix)
        return matrix

    def flat_share(self) -> np.ndarray | None:
        """(N,) :func:`~ogad_core.issues.features.flat_share` of the registration images (None
        without them), made once a context: the corrupt type's pixelation and the outlier type's
        input statistics both read it (at 1,000,000 images about 10 CPU s each time)."""
        images = self.registration
        if images is None or len(images) != self.n:
            return None
        if self._flat is None:
            from ogad_core.issues.features import flat_share

            self._flat = flat_share(images)
        return self._flat

    def object_sizes(self) -> np.ndarray | None:
        """(N, 2) :func:`~ogad_core.issues.features.object_size` of the registration images at
        INK_LEVEL (the outlier statistics' column) and BONUS_INK_LEVEL (the outlier type's
        size bonus), None without them; made once a context, in one pass for both."""
        images = self.registration
        if images is None or len(images) != self.n:
            return None
        if self._sizes is None:
            from ogad_core.issues.features import BONUS_INK_LEVEL, INK_LEVEL, object_sizes

            self._sizes = object_sizes(images, (INK_LEVEL, BONUS_INK_LEVEL))
        return self._sizes

    def pca(self, matrix: np.ndarray) -> np.ndarray:
        """(N, PCA_DIM) principal components of an (N, d) space (fitted on at most
        REFERENCE_ROWS seeded rows; the matrix itself when d <= PCA_DIM): the ``/pca`` flag."""
        if matrix.shape[1] <= PCA_DIM:
            return matrix
        from ogad_core.space.pca import pca_transform

        return pca_transform(matrix, PCA_DIM, seed=self.seed, fit_rows=REFERENCE_ROWS)

    def neighbours(
        self,
        name: str,
        k: int,
        *,
        reference: int | None = None,
        build: Callable[[], np.ndarray | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(N, k) Euclidean distances and (N, k) indices of each row's k nearest OTHER rows in
        space ``name`` (faiss, :mod:`ogad_core.space.knn`; cached, a larger k computed once
        serves a smaller one); None when absent. ``reference``: search only a seeded subsample
        of that many rows (when N is larger): a density estimate at a fraction of the cost.
        A ``/pca`` space of more than REFERENCE_ROWS rows uses an inverted file
        (:func:`~ogad_core.space.knn.ivf_index`): searched whole (the duplicate type's
        candidates) or among a reference (the label and outlier types' density estimates,
        scanning ``IVF_REFERENCE_PROBE`` lists).
        ``build``: makes space ``name``'s (N, d) matrix from one the caller holds (called
        only when the search is not cached; default :meth:`space`)."""
        ref = reference if reference is not None and reference < self.n else None
        cached = [kk for (nm, kk, rr) in self._knn if nm == name and rr == ref and kk >= k]
        if cached:
            dist, idx = self._knn[(name, min(cached), ref)]
            return dist[:, :k], idx[:, :k]
        matrix = self._pca_spaces.get(name)
        if matrix is None:
            matrix = self.space(name) if build is None else build()
        if matrix is None:
            return None
        if "pca" in name.split("/"):
            self._pca_spaces[name] = matrix
        if ref is None and self.n <= REFERENCE_ROWS:
            k = max(k, default_k(self.n))  # one search serves every type's k
        rows = None if ref is None else self.reference_rows(ref)
        # a /pca space above REFERENCE_ROWS rows: an inverted file, not a graph (3-4x
        # cheaper, docs/benchmarks.md); at or below, the kept runs' searches are unchanged
        probe = None
        if "pca" in name.split("/") and self.n > REFERENCE_ROWS:
            probe = knn.IVF_PROBE if rows is None else knn.IVF_REFERENCE_PROBE
        found = _knn_excluding_self(np.asarray(matrix, dtype=np.float32), k, rows, probe)
        self._knn[(name, k, ref)] = found
        return found

    def release_neighbours(self, keep: set[str] | None) -> None:
        """Drop the cached neighbours (and ``/pca`` matrices) of every space outside ``keep``
        (space names without ``/pca``, as :meth:`IssueType.neighbour_spaces`; None keeps them
        all): the searches no type still to be fitted reads (an (N, k) result holds 12 bytes a
        row a neighbour, a PCA 64)."""
        if keep is None:
            return
        for key in [key for key in self._knn if without_pca(key[0]) not in keep]:
            del self._knn[key]
        for name in [name for name in self._pca_spaces if without_pca(name) not in keep]:
            del self._pca_spaces[name]

    def reference_rows(self, reference: int) -> np.ndarray:
        """(M,) sorted rows of the seeded subsample a ``neighbours(..., reference=M)`` search
        runs among (every row when M >= N)."""
        if reference >= self.n:
            return np.arange(self.n)
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(self.n, size=reference, replace=False))

    def neighbours_among(
        self, name: str, k: int, rows: np.ndarray, queries: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(Q, k) Euclidean distances and (Q, k) indices of the k nearest OTHER rows among
        the given ``rows`` (M,) of space ``name``, for the (Q,) ``queries`` rows (not cached:
        a reference another pass chose, as the outlier type's bulk); None when absent."""
        matrix = self.space(name)
        if matrix is None:
            return None
        Z = np.asarray(matrix, dtype=np.float32)
        return _knn_excluding_self(Z, k, np.asarray(rows), queries=np.asarray(queries))


def without_pca(space: str) -> str:
    """A neighbour space's name without its ``/pca`` flag (the PCA and the space itself are
    read by the same types)."""
    return "/".join(flag for flag in space.split("/") if flag != "pca")


def fourier_magnitude(signatures: np.ndarray) -> np.ndarray:
    """(N, side * (side // 2 + 1)) float32 magnitudes of the 2-D Fourier transform of (N,
    side * side) square signatures, each with its mean removed (NaN as 0): a shifted copy
    keeps them. In row chunks of about CHUNK_BYTES (the transform of every row at once held
    4.6 KB a row: 4.6 GB at 1,000,000 images)."""
    side = int(round(np.sqrt(signatures.shape[1])))
    out = np.empty((len(signatures), side * (side // 2 + 1)), dtype=np.float32)
    for rows in row_chunks(len(signatures), 8 * 16 * side * side):  # ~8 complex128 copies
        images = np.nan_to_num(np.asarray(signatures[rows], np.float32)).reshape(-1, side, side)
        images = images - images.mean(axis=(1, 2), keepdims=True)
        out[rows] = np.abs(np.fft.rfft2(images)).reshape(len(images), -1)
    return out


def _knn_excluding_self(
    Z: np.ndarray,
    k: int,
    reference: np.ndarray | None = None,
    probe: int | None = None,
    *,
    queries: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) distances and indices of the k nearest other rows of (N, d) ``Z`` (only among
    the rows ``reference`` when given) for the (Q,) rows ``queries`` (every row when None).
    ``probe``: an inverted file (:func:`~ogad_core.space.knn.ivf_index`) scanning that many
    lists instead of :func:`index_for`'s graph, for a search in a few dimensions (every row
    against every row: searched list by list, :func:`~ogad_core.space.knn.ivf_self_search`);
    rows it leaves short are searched exactly."""
    Z = np.nan_to_num(Z, nan=0.0)
    ref_ids = np.arange(len(Z)) if reference is None else np.asarray(reference)
    query_ids = np.arange(len(Z)) if queries is None else np.asarray(queries)
    Q = Z if queries is None else Z[query_ids]
    k = min(k, len(ref_ids) - 1)
    index = index_for(Z[ref_ids]) if probe is None else ivf_index(Z[ref_ids])
    if probe is not None:
        index.nprobe = min(probe, index.nlist)
    if probe is not None and reference is None and queries is None:
        dist, idx = ivf_self_search(index, Q, k + 1)
    elif probe is not None:  # queries against a reference: by their nearest list too
        dist, idx = ivf_search_by_list(index, Q, k + 1)
    else:
        dist, idx = hnsw_search(index, Q, k + 1)
    short = np.flatnonzero((idx < 0).any(axis=1))
    if len(short):
        dist[short], idx[short] = hnsw_search(flat_index(Z[ref_ids]), Q[short], k + 1)
    idx = np.where(idx >= 0, ref_ids[np.maximum(idx, 0)], -1)
    is_self = idx == query_ids[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # self not returned (ties at 0): drop the last
    keep = ~is_self
    n_queries = len(query_ids)
    return dist[keep].reshape(n_queries, k), idx[keep].reshape(n_queries, k).astype(np.int64)


class IssueType(BaseEstimator):
    """Base class of an issue type (see the module doc for the contract)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: issue types fitted before this one when both run (their results are in
    #: ``context.results``), e.g. outliers leave the corrupt inputs to ``corrupt``
    after: ClassVar[tuple[str, ...]] = ()
    #: how the flag is decided, in words (README, the dashboard's help)
    threshold_doc: ClassVar[str] = ""

    scores_: np.ndarray
    flagged_: np.ndarray
    set_ids_: np.ndarray
    threshold_: float

    def fit(self, context: IssueContext) -> IssueType:
        raise NotImplementedError

    def neighbour_spaces(self, context: IssueContext) -> set[str] | None:
        """The spaces whose :meth:`IssueContext.neighbours` this type's ``fit`` reads (names
        without ``/pca``); the issue pass releases a cached search once no type still to be
        fitted reads it. None (the default: a plugin's, unknown): every search is kept until
        this type is fitted."""
        return None

    def explain(self, i: int) -> str:
        raise NotImplementedError

    def _finish(self, scores: np.ndarray, threshold: float, set_ids: Any = None) -> IssueType:
        """Store the fitted attributes (flags follow the threshold)."""
        self.scores_ = np.asarray(scores, dtype=np.float64)
        self.threshold_ = float(threshold)
        self.flagged_ = self.scores_ >= self.threshold_
        n = len(self.scores_)
        self.set_ids_ = (
            np.full(n, -1, dtype=np.int64) if set_ids is None else np.asarray(set_ids, np.int64)
        )
        return self


def robust_z(values: np.ndarray) -> np.ndarray:
    """(v - median) / (1.4826 MAD) of (N,) values; a zero MAD falls back to the IQR / mean
    absolute deviation so that a constant majority does not make every other value infinite."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.zeros_like(v)
    med = float(np.median(finite))
    scale = 1.4826 * float(np.median(np.abs(finite - med)))
    if scale <= 1e-12:
        scale = float(np.mean(np.abs(finite - med))) or 1.0
    return (v - med) / scale

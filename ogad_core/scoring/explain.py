"""Why a sample is flagged, and which label it probably has. Torch-free.

For a model whose gradients are taken w.r.t. its last linear layer (``params=last``, no
projection), each gradient row is ``[(p - onehot(y)) ⊗ h, p - onehot(y)]``: the last C entries
give back the model's full predicted distribution ``p`` and the weight block gives back the
penultimate features ``h`` (row y of the weight block is ``(p_y - 1) h``).
:func:`last_layer_parts` recovers both exactly. Otherwise (projected or all-parameter
gradients) the distribution is rebuilt from ``pred`` / ``confidence`` / ``loss`` and the
neighbours are looked up in the PCA-reduced gradient space.

The suggested label is ``argmax(VOTE_WEIGHT * vote + (1 - VOTE_WEIGHT) * p)``: ``vote`` is the
share of the sample's k nearest neighbours (cosine, features) carrying each given label, ``p``
the model's prediction; its confidence is that mixture's maximum. On mnist5k with 10% noise it
names the true label of 96-97% of the flipped samples (docs/benchmarks.md, "Review session").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import row_chunks
from ogad_core.errors import DataError
from ogad_core.scoring.target import pseudo_pred_probs
from ogad_core.space.pca import pca_transform

__all__ = [
    "N_NEIGHBORS",
    "VOTE_WEIGHT",
    "Explainer",
    "ExplainerParts",
    "Explanation",
    "explainer_parts",
    "last_layer_parts",
]

#: neighbours shown on a card and voting for the suggested label
N_NEIGHBORS = 10
#: weight of the neighbours' vote against the model's prediction in the suggestion
VOTE_WEIGHT = 0.5
#: neighbour search runs on at most this many PCA components of the features
NEIGHBOUR_DIMS = 32
#: the neighbour-space PCA is fit on at most this many seeded rows, then applied to all
NEIGHBOUR_FIT_ROWS = 20_000
#: up to this many queries (a page of cards) search exactly; more (every row) use
#: ``index_for``: exact up to ANN_MIN_ROWS rows, HNSW above
_QUERY_CHUNK = 256
#: evidence() searches the neighbours of this many rows at a time
_EVIDENCE_CHUNK = 65_536
#: the per-sample columns of :meth:`Explainer.evidence` besides sample_id
EVIDENCE_COLUMNS = ("margin", "neighbour_agreement", "suggested_label", "suggestion_confidence")
#: rows checked when testing for the last-layer layout
_CHECK_ROWS = 256


@dataclass(frozen=True)
class Explanation:
    """Why one sample is flagged (see :class:`Explainer`). Labels are class indices."""

    sample_id: int
    loss: float
    #: p(given) - max over the other classes of p: < 0 when the model prefers another class
    margin: float
    #: percentile (0-100) of the gradient's L2 norm among the samples with the same given label
    grad_norm_percentile: float
    given: int
    pred: int
    #: (sample_id, given label) of the nearest neighbours, nearest first
    neighbours: list[tuple[int, int]]
    suggested_label: int
    suggestion_confidence: float
    reasons: list[str] = field(default_factory=list)


def last_layer_parts(
    embeddings: np.ndarray, labels: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(probs (N, C), features (N, H)) from last-layer gradients, or None if not that layout.

    The layout ``[(p - e_y) ⊗ h (C*H, row-major), p - e_y (C)]`` is checked on up to 256 rows:
    the bias block plus onehot(y) must be a distribution, and the weight rows must be
    proportional to the bias entries.
    """
    n, d = embeddings.shape
    c = int(n_classes)
    if c < 2 or d % c or d // c < 2:
        return None
    h_dim = d // c - 1
    check = np.linspace(0, n - 1, min(n, _CHECK_ROWS)).astype(np.int64)
    if not _looks_last_layer(np.asarray(embeddings[check], np.float64), labels[check], c, h_dim):
        return None
    probs = np.empty((n, c), dtype=np.float64)
    feats = np.empty((n, h_dim), dtype=np.float32)
    for rows in row_chunks(n, d * 8):
        block = np.asarray(embeddings[rows], dtype=np.float64)
        y = labels[rows]
        bias = block[:, c * h_dim :]
        probs[rows] = np.clip(bias + np.eye(c)[y], 0.0, 1.0)
        feats[rows] = _features(block[:, : c * h_dim].reshape(-1, c, h_dim), bias)
    probs /= np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
    return probs, feats


def _features(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(m, H) features h from (m, C, H) weight gradients ``dz_c h`` and (m, C) ``dz``.

    Each row divides by its largest ``|dz_c|`` (the best-conditioned entry: for a confident
    sample ``1 - p_y`` may round to 0 in float32 while the other ``p_c`` do not).
    """
    best = np.abs(bias).argmax(axis=1)
    local = np.arange(bias.shape[0])
    denom = bias[local, best]
    safe = np.where(denom == 0, 1.0, denom)
    return np.where(denom[:, None] == 0, 0.0, weight[local, best] / safe[:, None])


def _looks_last_layer(block: np.ndarray, labels: np.ndarray, c: int, h_dim: int) -> bool:
    """Whether (m, C*(H+1)) rows have the last-layer gradient layout (see last_layer_parts)."""
    bias = block[:, c * h_dim :]
    probs = bias + np.eye(c)[labels]
    if probs.min() < -1e-4 or np.abs(probs.sum(axis=1) - 1.0).max() > 1e-3:
        return False
    weight = block[:, : c * h_dim].reshape(-1, c, h_dim)
    h = _features(weight, bias)
    rebuilt = bias[:, :, None] * h[:, None, :]
    scale = np.abs(weight).max() + 1e-12
    return bool(np.abs(rebuilt - weight).max() <= 1e-3 * scale)


def _percentile_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(N,) percentile 0-100 of each value among the values of its group (ties averaged)."""
    out = np.empty(len(values), dtype=np.float64)
    series = pd.Series(values)
    ranks = series.groupby(groups).rank(method="average", pct=True).to_numpy()
    out[:] = 100.0 * ranks
    return out


def _row_norms(embeddings: np.ndarray) -> np.ndarray:
    out = np.empty(embeddings.shape[0], dtype=np.float64)
    for rows in row_chunks(embeddings.shape[0], embeddings.shape[1] * 8):
        block = np.asarray(embeddings[rows], dtype=np.float64)
        out[rows] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


def _neighbour_space(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, k) float32 coordinates for cosine neighbours: unit rows, then PCA to <= 32 dims
    (fit on at most ``NEIGHBOUR_FIT_ROWS`` seeded rows, applied chunk by chunk)."""
    n, d = vectors.shape
    k = min(NEIGHBOUR_DIMS, d, n - 1)
    if k >= d or k < 1:
        return _unit_rows(vectors, np.arange(n))
    return pca_transform(vectors, k, seed=seed, fit_rows=NEIGHBOUR_FIT_ROWS, read=_unit_rows)


def _unit_rows(vectors: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """(m, D) float32 rows of (N, D) ``vectors`` scaled to unit length (zero rows stay zero)."""
    unit = np.asarray(vectors[rows], dtype=np.float32)
    return unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)


def _required(samples: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("sample_id", "label", "pred", "confidence", "loss") if c not in samples]
    if missing:
        raise DataError(f"the samples table has no {', '.join(map(repr, missing))} column")
    return samples.sort_values("sample_id", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class ExplainerParts:
    """What an :class:`Explainer` derives from the gradients (the costly part; stored once per
    run in ``evidence/`` by :mod:`ogad_core.scoring.evidence`)."""

    #: (N, C) float64 the model's distribution per sample
    probs: np.ndarray
    #: (N, k <= 32) float32 neighbour-space coordinates
    space: np.ndarray
    #: ``feature`` (last-layer features) or ``gradient`` (PCA of the gradients)
    space_name: str
    #: (N,) float64 percentile of the gradient norm within the sample's given label
    norm_percentile: np.ndarray


def explainer_parts(embeddings: np.ndarray, samples: pd.DataFrame, seed: int = 0) -> ExplainerParts:
    """The :class:`ExplainerParts` of (N, D) ``embeddings`` (array or memmap) in sample_id order.

    ``samples``: the samples table (sample_id, label, pred, confidence, loss), any order.
    """
    table = _required(samples)
    n = len(table)
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise DataError(f"embeddings {embeddings.shape} do not match {n} samples")
    labels = table["label"].to_numpy(dtype=np.int64)
    n_classes = _n_classes(table)
    parts = last_layer_parts(embeddings, labels, n_classes)
    if parts is not None:
        probs, space, name = parts[0], parts[1], "feature"
    else:
        probs = pseudo_pred_probs(table, n_classes=n_classes)[1]
        space, name = embeddings, "gradient"
    return ExplainerParts(
        probs=probs,
        space=_neighbour_space(space, seed),
        space_name=name,
        norm_percentile=_percentile_within(_row_norms(embeddings), labels),
    )


def _n_classes(table: pd.DataFrame) -> int:
    return int(max(table["label"].max(), table["pred"].max())) + 1


class Explainer:
    """Explanations and suggested labels for one run.

    Args:
        embeddings: (N, D) gradient embeddings (array or memmap) in sample_id order; None when
            ``parts`` are given.
        samples: the samples table (sample_id, label, pred, confidence, loss, optionally
            label_name); N rows, any order (sorted by sample_id here).
        scores: the scores table (sample_id, ``D_score``, ``D_rank``) or None.
        detector: the detector whose rank the reasons quote (default: the first in scores).
        n_neighbors: neighbours per sample (capped at N - 1).
        parts: the :class:`ExplainerParts` computed before (read back from the run's
            ``evidence/``): no pass over the gradients then.
        evidence: the :meth:`evidence` table computed before (its rows in sample_id order).
    """

    def __init__(
        self,
        embeddings: np.ndarray | None,
        samples: pd.DataFrame,
        scores: pd.DataFrame | None = None,
        *,
        detector: str | None = None,
        n_neighbors: int = N_NEIGHBORS,
        seed: int = 0,
        parts: ExplainerParts | None = None,
        evidence: pd.DataFrame | None = None,
    ) -> None:
        self.samples = _required(samples)
        n = len(self.samples)
        if parts is None:
            if embeddings is None:
                raise DataError("an Explainer needs the embeddings or their parts")
            parts = explainer_parts(embeddings, self.samples, seed)
        if parts.space.shape[0] != n or parts.probs.shape[0] != n:
            raise DataError(f"the evidence has {parts.space.shape[0]} rows, not {n} samples")
        self.sample_ids = self.samples["sample_id"].to_numpy(dtype=np.int64)
        self._row_of = {int(s): i for i, s in enumerate(self.sample_ids)}
        self.labels = self.samples["label"].to_numpy(dtype=np.int64)
        self.pred = self.samples["pred"].to_numpy(dtype=np.int64)
        self.loss = self.samples["loss"].to_numpy(dtype=np.float64)
        self.n_classes = max(_n_classes(self.samples), parts.probs.shape[1])
        self.parts = parts
        self.probs, self.space, self.space_name = parts.probs, parts.space, parts.space_name
        self.norm_percentile = parts.norm_percentile
        self.k = int(max(0, min(n_neighbors, n - 1)))
        self._exact: Any = None  # faiss indexes, built on first use
        self._bulk: Any = None
        self._names = _label_names(self.samples)
        self._rank, self.detector = _ranks(scores, detector, self.sample_ids)
        self._evidence = evidence

    # ---- neighbours and suggestions ----------------------------------------------------

    def neighbour_rows(self, rows: np.ndarray) -> np.ndarray:
        """(m, k) rows of the k nearest other samples of each of (m,) ``rows``, nearest first.

        A few queries (a page of cards, up to ``_QUERY_CHUNK``): exact (faiss flat index).
        More: ``index_for`` the space, exact up to ANN_MIN_ROWS rows and HNSW above (an
        exact search of every row costs N^2).
        """
        from ogad_core.space import knn as neighbours

        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) <= _QUERY_CHUNK or self.space.shape[0] <= neighbours.ANN_MIN_ROWS:
            if self._exact is None:
                self._exact = neighbours.flat_index(self.space)
            index = self._exact
        else:
            if self._bulk is None:
                self._bulk = neighbours.index_for(self.space)
            index = self._bulk
        return neighbours.knn_excluding_self(index, self.space, rows, self.k)

    def _posterior(self, rows: np.ndarray, near: np.ndarray) -> np.ndarray:
        """(m, C) mixture of the neighbours' label vote and the model's prediction."""
        if near.shape[1] == 0:
            return self.probs[rows]
        votes = np.zeros((len(rows), self.n_classes), dtype=np.float64)
        np.add.at(
            votes, (np.repeat(np.arange(len(rows)), near.shape[1]), self.labels[near].ravel()), 1.0
        )
        votes /= near.shape[1]
        return VOTE_WEIGHT * votes + (1.0 - VOTE_WEIGHT) * self.probs[rows]

    def suggestions(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N,) int64, confidence (N,) float64) suggested for every sample, row order.

        Computed once (all neighbours, in chunks of 65,536 rows) and cached.
        """
        table = self.evidence()
        return (
            table["suggested_label"].to_numpy(dtype=np.int64),
            table["suggestion_confidence"].to_numpy(dtype=np.float64),
        )

    def suggest(self, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (m,), confidence (m,)) suggested for (m,) sample ids: a page of cards.

        The same values as :meth:`suggestions` without computing every row's neighbours.
        """
        rows = np.fromiter((self.row(s) for s in np.asarray(sample_ids).reshape(-1)), np.int64)
        if self._evidence is not None:
            table = self._evidence
            return (
                table["suggested_label"].to_numpy(dtype=np.int64)[rows],
                table["suggestion_confidence"].to_numpy(dtype=np.float64)[rows],
            )
        post = self._posterior(rows, self.neighbour_rows(rows))
        return post.argmax(axis=1).astype(np.int64), post.max(axis=1)

    def evidence(self) -> pd.DataFrame:
        """Per-sample evidence, row (sample_id) order, computed once and cached.

        Columns: sample_id, margin, neighbour_agreement (share of the neighbours carrying the
        sample's given label), suggested_label, suggestion_confidence.
        """
        if self._evidence is None:
            n = len(self.labels)
            chunks = [
                self.evidence_rows(np.arange(start, min(n, start + _EVIDENCE_CHUNK)))
                for start in range(0, n, _EVIDENCE_CHUNK)
            ]
            columns = {name: np.concatenate([c[name] for c in chunks]) for name in EVIDENCE_COLUMNS}
            self._evidence = pd.DataFrame({"sample_id": self.sample_ids, **columns})
        return self._evidence

    def evidence_rows(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The :meth:`evidence` columns (``EVIDENCE_COLUMNS``, each (m,)) of (m,) ``rows``:
        one neighbour search for them (a chunk of a resumable build)."""
        near = self.neighbour_rows(rows)
        post = self._posterior(rows, near)
        agreement = np.ones(len(rows), dtype=np.float64)
        if near.shape[1]:
            agreement = (self.labels[near] == self.labels[rows, None]).mean(axis=1)
        return {
            "margin": self.margins(rows),
            "neighbour_agreement": agreement,
            "suggested_label": post.argmax(axis=1).astype(np.int64),
            "suggestion_confidence": post.max(axis=1).astype(np.float64),
        }

    def margins(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(m,) p(given) - max over the other classes of p, for ``rows`` (default: all N)."""
        rows = np.arange(len(self.labels)) if rows is None else np.asarray(rows)
        given = self.labels[rows]
        others = np.array(self.probs[rows], dtype=np.float64)
        p_given = others[np.arange(len(rows)), given].copy()
        others[np.arange(len(rows)), given] = -np.inf
        return p_given - others.max(axis=1)

    # ---- one sample ------------------------------------------------------------------------

    def row(self, sample_id: int) -> int:
        """The row of ``sample_id``; DataError for an unknown one."""
        try:
            return self._row_of[int(sample_id)]
        except KeyError:
            raise DataError(f"unknown sample_id {sample_id}") from None

    def explain(self, sample_id: int) -> Explanation:
        """The :class:`Explanation` of one sample."""
        row = self.row(sample_id)
        near = self.neighbour_rows(np.array([row]))
        post = self._posterior(np.array([row]), near)[0]
        probs = self.probs[row]
        given, pred = int(self.labels[row]), int(self.pred[row])
        others = np.delete(probs, given)
        margin = float(probs[given] - (others.max() if len(others) else 0.0))
        suggested = int(post.argmax())
        explanation = Explanation(
            sample_id=int(sample_id),
            loss=float(self.loss[row]),
            margin=margin,
            grad_norm_percentile=float(self.norm_percentile[row]),
            given=given,
            pred=pred,
            neighbours=[(int(self.sample_ids[r]), int(self.labels[r])) for r in near[0]],
            suggested_label=suggested,
            suggestion_confidence=float(post.max()),
        )
        explanation.reasons.extend(self._reasons(row, explanation))
        return explanation

    def name(self, label: int) -> str:
        """The label name of a class index (the index itself when unknown)."""
        return self._names.get(int(label), str(label))

    def _reasons(self, row: int, ex: Explanation) -> list[str]:
        """Short sentences, the strongest first."""
        reasons = []
        if self._rank is not None:
            reasons.append(
                f"ranked #{int(self._rank[row]):,} of {len(self.labels):,} by {self.detector}"
            )
        p_given = float(self.probs[row, ex.given])
        if ex.pred != ex.given:
            reasons.append(
                f"the model predicts {self.name(ex.pred)} ({self.probs[row, ex.pred]:.0%}), "
                f"not the given {self.name(ex.given)} ({p_given:.0%}); margin {ex.margin:+.2f}"
            )
        else:
            reasons.append(
                f"the model agrees with the given label ({p_given:.0%}); margin {ex.margin:+.2f}"
            )
        reasons.append(
            f"loss {ex.loss:.2f}; gradient norm above {ex.grad_norm_percentile:.0f}% of its class"
        )
        if ex.neighbours:
            same = sum(1 for _, label in ex.neighbours if label == ex.given)
            top = sum(1 for _, label in ex.neighbours if label == ex.suggested_label)
            text = (
                f"{same} of {len(ex.neighbours)} nearest neighbours ({self.space_name} space) "
                "share the given label"
            )
            if ex.suggested_label != ex.given:
                text += f"; {top} are {self.name(ex.suggested_label)}"
            reasons.append(text)
        if ex.suggested_label != ex.given:
            reasons.append(
                f"suggested label {self.name(ex.suggested_label)} ({ex.suggestion_confidence:.0%})"
            )
        return reasons


def _label_names(samples: pd.DataFrame) -> dict[int, str]:
    """Class index -> name from the label / label_name (and pred / pred_name) columns."""
    names: dict[int, str] = {}
    for idx, name in (("label", "label_name"), ("pred", "pred_name")):
        if name in samples.columns:
            pairs = samples[[idx, name]].drop_duplicates(idx)
            for i, label_name in zip(pairs[idx], pairs[name], strict=True):
                names.setdefault(int(i), str(label_name))
    return names


def _ranks(
    scores: pd.DataFrame | None, detector: str | None, sample_ids: np.ndarray
) -> tuple[np.ndarray | None, str | None]:
    """(N,) the detector's D_rank in row order (None without scores), and the detector."""
    if scores is None or "sample_id" not in scores.columns:
        return None, None
    available = [c[: -len("_rank")] for c in scores.columns if c.endswith("_rank")]
    if detector is None:
        detector = available[0] if available else None
    if detector not in available:
        return None, None
    ranks = scores.set_index("sample_id")[f"{detector}_rank"].reindex(sample_ids)
    if ranks.isna().any():
        return None, None
    return ranks.to_numpy(dtype=np.int64), detector

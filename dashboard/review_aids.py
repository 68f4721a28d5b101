"""The review helpers of ``ogad_core.review`` (target, re-ranking, explanations, suggestions) as
the dashboard uses them: cached per run, and None wherever the library part or the run's
gradients are missing, so each feature stays hidden rather than broken. Never imports torch.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache
from dashboard.context import Context
from dashboard.run_view import run_files_stamp
from ogad_core._internal import log
from ogad_core.errors import OgadError
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED
from ogad_core.run.rundir import RunDir

BAD_DECISIONS = (CONFIRMED, RELABELED)  # the reviewer says the flag was right
MIN_EACH = 2  # the re-ranker learns once it has this many bad and this many rejected decisions


def _module(name: str) -> ModuleType | None:
    """``ogad_core.<name>``, or None while that part of the library does not exist."""
    try:
        return importlib.import_module(f"ogad_core.{name}")
    except ImportError:
        return None


def detector_advice() -> tuple[str, str] | None:
    """(the default detector, why it is the default), or None when the library gives none."""
    detectors = _module("options")  # not scoring.detectors: that loads scikit-learn
    name = getattr(detectors, "DEFAULT_DETECTOR", None)
    reason = getattr(detectors, "DEFAULT_DETECTOR_REASON", None)
    if not name or not reason:
        return None
    return str(name), str(reason)


def default_detector(detectors: list[str]) -> str | None:
    """The evidence-based default when the run has it, else the run view's default."""
    advice = detector_advice()
    if advice is not None and advice[0] in detectors:
        return advice[0]
    from ogad_core.review.export import default_detector as export_default

    return export_default(detectors)


@st.cache_resource(max_entries=2, show_spinner=False)
def _embeddings_of(run_path: str, stamp: tuple, grad_stamp: tuple) -> np.ndarray | None:
    path = RunDir(run_path).gradients_path
    try:
        matrix = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    view = cache.run_view(run_path)
    if matrix.ndim != 2 or matrix.shape[0] != view.n_samples:
        return None
    return matrix


def _embeddings(run_path: str) -> np.ndarray | None:
    """The run's gradient embeddings (N, D), memory-mapped, one object per state of the file
    (the re-ranker caches its PCA by that object); None when absent or of the wrong shape."""
    path = RunDir(run_path).gradients_path
    try:
        info = path.stat()
    except OSError:
        return None
    grad_stamp = (info.st_mtime_ns, info.st_size)
    return _embeddings_of(run_path, run_files_stamp(run_path), grad_stamp)


def _scores_frame(run_path: str) -> pd.DataFrame | None:
    run = RunDir(run_path)
    return run.read_scores() if run.detectors() else None


@st.cache_resource(max_entries=8, show_spinner="Estimating the review target…")
def _target(run_path: str, stamp: tuple, detector: str) -> Any:
    module = _module("scoring.target")
    scores = _scores_frame(run_path)
    if module is None or scores is None:
        return None
    view = cache.run_view(run_path)
    try:
        return module.estimate_review_target(view.table, scores, detector)
    except (OgadError, ValueError, KeyError) as err:
        log.warning("review target unavailable: %s", err)
        return None


def review_target(run: Context, detector: str | None) -> Any:
    """The estimated review target (``n_target``, ``noise_rate``, ``method``, ``note``) or None."""
    run_path = run.run_path
    if detector is None:
        return None
    return _target(run_path, run_files_stamp(run_path), detector)


@st.cache_data(max_entries=16, show_spinner=False)
def _recent_bad(
    run_path: str, version: int, left_key: str | None = None, _left_out: np.ndarray | None = None
) -> tuple[int, np.ndarray]:
    """(samples reviewed, (k,) bool of the latest KEEP_GOING_BLOCK decisions in effect, newest
    last: True = confirmed or relabeled), without the decisions on the sample ids
    ``_left_out`` (named ``left_key`` in the cache)."""
    current = cache.review_store(run_path).current()
    if _left_out is not None:
        current = current[~current["sample_id"].isin(_left_out)]
    block = int(getattr(_module("scoring.target"), "KEEP_GOING_BLOCK", 10))
    latest = current.sort_values("updated_at", kind="stable").tail(block)
    return len(current), latest["decision"].isin(BAD_DECISIONS).to_numpy()


def review_length(
    run: Context,
    detector: str | None,
    n_flagged: int | None = None,
    left_out: tuple[str, np.ndarray] | None = None,
) -> Any:
    """The queue length the review target gives now (a ``QueueLength``: the estimate, extended
    while the latest decisions keep confirming flags), or None without a target. ``n_flagged``
    replaces the estimate as the start (the label issue type's flags: the target less the
    samples another issue type explains); ``left_out`` = (a name for caches, sample ids) whose
    decisions do not count (made in another issue type's queue)."""
    run_path = run.run_path
    target = review_target(run, detector)
    module = _module("scoring.target")
    if target is None or module is None:
        return None
    start = target.n_target if n_flagged is None else n_flagged
    version = cache.review_store(run_path).version()
    key, ids = (None, None) if left_out is None else left_out
    n_reviewed, recent = _recent_bad(run_path, version, key, ids)
    n = cache.run_view(run_path).n_samples
    # grown a block at a time: the sidebar's Queue length box (outside the queue's fragment)
    # is redrawn by a full rerun when the length changes, once per block of decisions
    return module.queue_length(start, n_reviewed, recent, n, step=module.KEEP_GOING_BLOCK)


def rerank_learning(table: pd.DataFrame) -> bool:
    """Whether the decisions in ``table`` (``status`` column) are enough to re-rank from."""
    n_bad = int(table["status"].isin(BAD_DECISIONS).sum())
    n_good = int((table["status"] == REJECTED).sum())
    return min(n_bad, n_good) >= MIN_EACH


def rerank_available(run: Context) -> bool:
    """Whether the queue can be re-ranked from decisions (library part and gradients exist)."""
    run_path = run.run_path
    return _module("scoring.rerank") is not None and _embeddings(run_path) is not None


#: up to this many rows the evidence is built while the page loads (about a second); above, in
#: a background thread while the page shows the detector's order (docs/benchmarks.md)
SYNC_ROWS = 20_000


@dataclass
class _Build:
    """The review evidence of one state of a run, filled by :func:`_start` (maybe in a thread).

    ``explainer`` answers for a page of cards as soon as it exists; ``evidence`` (every row's
    suggestion and the re-ranker's features) switches re-ranking on; ``phase`` counts the two,
    so the caches keyed by it never keep an answer from before."""

    explainer: Any = None
    evidence: Any = None
    phase: int = 0
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(max_entries=4, show_spinner=False)
def _build_of(run_path: str, stamp: tuple, grad_stamp: tuple) -> _Build:
    return _Build()


def _fill(build: _Build, run_path: str, embeddings: np.ndarray, table: pd.DataFrame) -> None:
    """Read the run's evidence/ back, or build it (and write it when the run is writable)."""
    module = _module("scoring.evidence")
    if module is None:
        return
    try:
        run = RunDir(run_path)
        stamp = module.input_stamp(run)
        found = module.read_evidence(run.evidence_dir, stamp)
        if found is None:

            def early(explainer: Any) -> None:
                build.explainer, build.phase = explainer, 1

            found = module.build_evidence(embeddings, table, on_explainer=early)
            _write(module, found, run, stamp)
        build.explainer = found.explainer(table)
        build.evidence, build.phase = found, 2
    except (OgadError, ValueError, OSError) as err:
        log.warning("explanations unavailable: %s", err)


def _write(module: ModuleType, found: Any, run: RunDir, stamp: Any) -> None:
    try:
        module.write_evidence(found, run.evidence_dir, stamp)
    except OSError as err:  # a read-only run: the evidence stays in this process
        log.warning("the review evidence stays in memory: %s", err)


def _build(run_path: str) -> _Build | None:
    """The run's evidence build: filled at once up to SYNC_ROWS rows, else started in a
    background thread (its parts appear as they are ready); None without gradients."""
    embeddings = _embeddings(run_path)
    if embeddings is None:
        return None
    try:
        info = RunDir(run_path).gradients_path.stat()
    except OSError:
        return None
    build = _build_of(run_path, run_files_stamp(run_path), (info.st_mtime_ns, info.st_size))
    with build.lock:
        if build.thread is not None or build.phase == 2:
            return build
        table = cache.run_view(run_path).table
        build.thread = threading.Thread(
            target=_fill, args=(build, run_path, embeddings, table), daemon=True
        )
        if embeddings.shape[0] > SYNC_ROWS:
            build.thread.start()
            return build
    with st.spinner("Finding each sample's neighbours…"):
        build.thread.run()  # a small run: in this script run
    return build


def evidence_ready(run: Context) -> bool:
    """Whether every row's evidence (and so re-ranking) is ready for this run."""
    run_path = run.run_path
    build = _build(run_path)
    return build is not None and build.phase == 2


@st.cache_data(max_entries=8, show_spinner=False)
def _reranked(
    run_path: str,
    stamp: tuple,
    detector: str,
    version: int,
    phase: int,
    base_key: str | None,
    _base: np.ndarray | None,
) -> np.ndarray | None:
    module = _module("scoring.rerank")
    embeddings = _embeddings(run_path)
    build = _build(run_path)
    if module is None or embeddings is None or build is None or build.evidence is None:
        return None  # not ready yet (a big run's evidence builds in the background)
    table, _ = cache.table_with_decisions(run_path)
    decided = table["status"].isin((*BAD_DECISIONS, REJECTED)).to_numpy()
    base = table[f"{detector}_score"].to_numpy(dtype=float) if _base is None else _base
    bad = table["status"].isin(BAD_DECISIONS).to_numpy()[decided]
    ids = table["sample_id"].to_numpy()[decided]
    # called before any decision too: the Reranker (features read from evidence/) is then
    # ready before the reviewer's first click
    scores = module.rerank_scores(
        embeddings, base, ids, bad, explainer=build.explainer, pca=build.evidence.rerank_pca
    )
    if not decided.any():
        return None  # nothing learned yet: the detector's order stands
    return module.queue_ranks(scores)


def reranked(
    table: pd.DataFrame,
    run: Context,
    detector: str,
    version: int,
    base: tuple[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """``table`` with ``{detector}_rank`` replaced by the re-ranked order (same table when
    re-ranking has nothing to learn from yet, its features are still being built, or it is
    unavailable). Rows are in sample_id order, aligned with the gradient rows. ``base``: (a
    name for caches, (N,) scores per row, higher = worse) the re-ranker starts from in place
    of the detector's scores (the label issue type's)."""
    run_path = run.run_path
    build = _build(run_path)
    phase = 0 if build is None else build.phase
    key, scores = (None, None) if base is None else base
    ranks = _reranked(run_path, run_files_stamp(run_path), detector, version, phase, key, scores)
    if ranks is None:
        return table
    out = table.copy(deep=False)
    out[f"{detector}_rank"] = ranks
    return out


def _explainer(run_path: str, stamp: tuple) -> Any:
    """The run's Explainer as far as it is built (None before; see :func:`_build`)."""
    if _module("scoring.explain") is None:
        return None
    build = _build(run_path)
    return None if build is None else build.explainer


def _phase(run_path: str) -> int:
    build = _build(run_path)
    return 0 if build is None else build.phase


def explainer(run: Context) -> Any:
    """The run's Explainer (None when unavailable or not built yet)."""
    run_path = run.run_path
    return _explainer(run_path, run_files_stamp(run_path))


@st.cache_resource(max_entries=4096, show_spinner=False)
def _explanation(run_path: str, stamp: tuple, phase: int, sample_id: int) -> Any:
    found = _explainer(run_path, stamp)
    if found is None:
        return None
    try:
        return found.explain(sample_id)
    except (OgadError, ValueError, KeyError, IndexError) as err:
        log.warning("no explanation for sample %s: %s", sample_id, err)
        return None


def explanation(run: Context, sample_id: int) -> Any:
    """Why one sample is flagged (an Explanation) or None."""
    run_path = run.run_path
    return _explanation(run_path, run_files_stamp(run_path), _phase(run_path), int(sample_id))


@dataclass(frozen=True)
class CardWhy:
    """The part of an Explanation a grid card shows (no neighbours: those need a kNN query)."""

    loss: float
    margin: float
    grad_norm_percentile: float
    suggested_label: int
    suggestion_confidence: float
    reasons: list[str] = field(default_factory=list)
    neighbours: list[tuple[int, int]] = field(default_factory=list)


@st.cache_resource(max_entries=4, show_spinner=False)
def _why_of(run_path: str, stamp: tuple, phase: int) -> dict[int, CardWhy]:
    """The grid cards' CardWhy by sample id, filled a page at a time (shared by sessions)."""
    return {}


@st.cache_resource(max_entries=4, show_spinner=False)
def _margins(run_path: str, stamp: tuple, phase: int) -> np.ndarray | None:
    found = _explainer(run_path, stamp)
    return None if found is None else np.asarray(found.margins(), dtype=np.float64)


def prefetch_why(run: Context, sample_ids: list[int]) -> None:
    """Compute the CardWhy of the ``sample_ids`` not known yet in one batch (one neighbour
    query for the page, not one per card; a lookup once the re-ranker computed every row)."""
    run_path = run.run_path
    stamp, phase = run_files_stamp(run_path), _phase(run_path)
    found, known = _explainer(run_path, stamp), _why_of(run_path, stamp, phase)
    missing = [int(s) for s in sample_ids if int(s) not in known]
    if found is None or not missing or not hasattr(found, "suggest"):
        return
    margins = _margins(run_path, stamp, phase)
    if margins is None:
        return
    labels, confidence = found.suggest(np.asarray(missing, dtype=np.int64))
    for sid, label, conf in zip(missing, labels, confidence, strict=True):
        row = found.row(sid)
        known[sid] = CardWhy(
            loss=float(found.loss[row]),
            margin=float(margins[row]),
            grad_norm_percentile=float(found.norm_percentile[row]),
            suggested_label=int(label),
            suggestion_confidence=float(conf),
        )


def cards_why(run: Context, sample_ids: list[int]) -> dict[int, Any]:
    """Why each card of a page is flagged (see :func:`prefetch_why`), in one batch and one cache
    lookup per page: {sample id: CardWhy, or a full :func:`explanation` when the batch path is
    unavailable, or None without an explainer}."""
    run_path = run.run_path
    prefetch_why(run, sample_ids)
    known = _why_of(run_path, run_files_stamp(run_path), _phase(run_path))
    out: dict[int, Any] = {}
    for sid in map(int, sample_ids):
        found = known.get(sid)
        out[sid] = found if found is not None else explanation(run, sid)
    return out

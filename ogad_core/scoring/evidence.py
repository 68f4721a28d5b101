"""The review evidence of a run, computed once and kept in its ``evidence/`` folder. Torch-free.

What the review page needs from the gradients for every row — the explainer's parts (the
model's distribution, the neighbour space, the gradient-norm percentiles), every row's
neighbours and suggested label (:meth:`Explainer.evidence`) and the re-ranker's PCA features
(:func:`pca_features`) — costs a pass over the gradients and an all-rows neighbour search. It is
written once (by ``ogad compute`` / ``ogad map``, or by the dashboard for runs made before) and
read back by every later server process::

    evidence/rows.npy          (N, W) float32, one row per sample (sample_id order), through the
                               run's one resumable row store (rows.done.npy, rows.json: done-mask,
                               checksums); the columns, in this order (:class:`Layout`):
                                 probs      C     the model's distribution
                                 space      k<=32 neighbour-space coordinates
                                 norm_pct   1     gradient-norm percentile within the given label
                                 rerank_pca r<=16 the re-ranker's PCA features
                                 margin, neighbour_agreement, suggested_label,
                                 suggestion_confidence  (Explainer.evidence's columns)
    evidence/stamp.json        written last: the inputs' stamp, the layout and each file's size
                               and mtime

The rows are written chunk by chunk as the all-rows neighbour search goes (``ogad compute`` /
``ogad map``): a killed build resumes at the first chunk not done. float32 keeps the suggested
labels exact (they are computed in float64 before they are stored) and the other values to
about 7 digits, which the review page shows as percentages and ranks. The folder is used only
when the stamp names the current gradients.npy and samples.parquet (size and mtime), the
current parameters, and files of exactly the recorded size and mtime. Anything else is stale:
rebuilt, never used. A folder of the first format (table.parquet and four .npy files) is stale
by its version, and its files are removed when the folder is rewritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import log, one_line, write_json_atomic
from ogad_core.errors import OgadError
from ogad_core.options import fingerprint
from ogad_core.run.rundir import RunDir
from ogad_core.run.store import ArrayRows, GradientStore
from ogad_core.scoring import explain, rerank
from ogad_core.scoring.explain import EVIDENCE_COLUMNS, Explainer, ExplainerParts
from ogad_core.space import knn as neighbours

__all__ = [
    "Evidence",
    "Layout",
    "build_evidence",
    "input_stamp",
    "load_or_build",
    "read_evidence",
    "write_evidence",
]

#: bump when what the folder holds or how it is computed changes (2: one float32 row store)
FORMAT_VERSION = 2
ROWS, STAMP = "rows.npy", "stamp.json"
#: the first format's files, removed when a folder is rewritten
OLD_FILES = ("table.parquet", "probs.npy", "space.npy", "norm_pct.npy", "rerank_pca.npy")
#: rows per chunk of the build (each chunk: one neighbour search, one write to the store)
CHUNK_ROWS = 65_536

#: where the rows of a build go: the run's store, or memory
RowSink = GradientStore | ArrayRows


@dataclass(frozen=True)
class Evidence:
    """Everything the review page derives from one run's gradients (see the module doc)."""

    parts: ExplainerParts
    #: Explainer.evidence(): one row per sample, sample_id order
    table: pd.DataFrame
    #: (N, r) the re-ranker's PCA features
    rerank_pca: np.ndarray

    def explainer(self, samples: pd.DataFrame) -> Explainer:
        """The run's :class:`Explainer`, built without touching the gradients."""
        return Explainer(None, samples, None, parts=self.parts, evidence=self.table)


@dataclass(frozen=True)
class Layout:
    """The columns of one evidence row (see the module doc): C classes, k neighbour-space
    dimensions, r re-rank components."""

    n_classes: int
    space_dims: int
    rerank_dims: int

    @classmethod
    def of(cls, parts: ExplainerParts, rerank_pca: np.ndarray) -> Layout:
        return cls(parts.probs.shape[1], parts.space.shape[1], rerank_pca.shape[1])

    def spans(self) -> dict[str, slice]:
        """Column span of each part, in row order."""
        widths = {
            "probs": self.n_classes,
            "space": self.space_dims,
            "norm_pct": 1,
            "rerank_pca": self.rerank_dims,
            **dict.fromkeys(EVIDENCE_COLUMNS, 1),
        }
        ends = np.cumsum(list(widths.values()))
        return {
            k: slice(int(e - w), int(e)) for (k, w), e in zip(widths.items(), ends, strict=True)
        }

    @property
    def width(self) -> int:
        return self.n_classes + self.space_dims + 1 + self.rerank_dims + len(EVIDENCE_COLUMNS)

    def pack(
        self,
        parts: ExplainerParts,
        rerank_pca: np.ndarray,
        table: dict[str, np.ndarray],
        rows: np.ndarray,
    ) -> np.ndarray:
        """(m, W) float32 evidence rows of (m,) ``rows``; ``table`` holds their (m,) columns."""
        columns = [
            np.asarray(parts.probs[rows], dtype=np.float32),
            np.asarray(parts.space[rows], dtype=np.float32),
            np.asarray(parts.norm_percentile[rows], dtype=np.float32)[:, None],
            np.asarray(rerank_pca[rows], dtype=np.float32),
            *(np.asarray(table[c], dtype=np.float32)[:, None] for c in EVIDENCE_COLUMNS),
        ]
        return np.concatenate(columns, axis=1)

    def unpack(self, matrix: np.ndarray, space_name: str) -> Evidence:
        """The :class:`Evidence` of (N, W) ``matrix`` (views of it; the table is read)."""
        spans = self.spans()
        n = matrix.shape[0]
        table = pd.DataFrame({"sample_id": np.arange(n, dtype=np.int64)})
        for name in EVIDENCE_COLUMNS:
            column = np.asarray(matrix[:, spans[name]]).reshape(n).astype(np.float64)
            table[name] = column.astype(np.int64) if name == "suggested_label" else column
        parts = ExplainerParts(
            probs=matrix[:, spans["probs"]],
            space=matrix[:, spans["space"]],
            space_name=space_name,
            norm_percentile=matrix[:, spans["norm_pct"]].reshape(n),
        )
        return Evidence(parts, table, matrix[:, spans["rerank_pca"]])


def build_evidence(
    embeddings: np.ndarray,
    samples: pd.DataFrame,
    seed: int = 0,
    *,
    on_explainer: Callable[[Explainer], None] | None = None,
    open_rows: Callable[[Layout], RowSink] | None = None,
) -> Evidence:
    """The :class:`Evidence` of (N, D) ``embeddings`` (array or memmap, sample_id order).

    ``on_explainer`` receives the :class:`Explainer` as soon as it exists, before the all-rows
    neighbour search (the dashboard explains a page of cards with it meanwhile).
    ``open_rows(layout)`` gives the store the rows go to, chunk by chunk (rows it holds already
    are not searched again); by default they stay in memory.
    """
    found = Explainer(embeddings, samples, None, seed=seed)
    if on_explainer is not None:
        on_explainer(found)
    pca = rerank.pca_features(embeddings, seed=seed)
    layout = Layout.of(found.parts, pca)
    n = len(found.labels)
    sink = open_rows(layout) if open_rows is not None else ArrayRows(n, layout.width)
    for rows in _pending_chunks(sink, n):
        sink.write(rows, layout.pack(found.parts, pca, found.evidence_rows(rows), rows))
    return layout.unpack(sink.array(), found.parts.space_name)


def _pending_chunks(sink: RowSink, n: int) -> list[np.ndarray]:
    """The chunks of ``CHUNK_ROWS`` rows (a fixed grid, so a resumed build searches the same
    chunks) holding a row not done yet."""
    pending = np.unique(sink.pending() // CHUNK_ROWS)
    return [np.arange(c * CHUNK_ROWS, min(n, (c + 1) * CHUNK_ROWS)) for c in pending.tolist()]


def _file_stat(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_mtime_ns, info.st_size]


def input_stamp(run: RunDir, seed: int = 0) -> dict[str, Any] | None:
    """What the evidence of ``run`` is made from (files' mtime and size, parameters); None
    when the gradients or the samples table are missing."""
    try:
        inputs = {p.name: _file_stat(p) for p in (run.gradients_path, run.samples_path)}
    except OSError:
        return None
    params = {
        "n_neighbors": explain.N_NEIGHBORS,
        "vote_weight": explain.VOTE_WEIGHT,
        "neighbour_dims": explain.NEIGHBOUR_DIMS,
        "neighbour_fit_rows": explain.NEIGHBOUR_FIT_ROWS,
        "rerank_components": rerank.N_COMPONENTS,
        "rerank_fit_rows": rerank.PCA_FIT_ROWS,
        "ann_min_rows": neighbours.ANN_MIN_ROWS,
    }
    return {"version": FORMAT_VERSION, "seed": seed, "inputs": inputs, "params": params}


def _store_files(folder: Path) -> list[Path]:
    """rows.npy and its row-store sidecars (done-mask, checksums)."""
    rows = folder / ROWS
    return [rows, rows.with_name(rows.stem + ".done.npy"), rows.with_name(rows.stem + ".json")]


def open_store(folder: Path, stamp: dict[str, Any], n_rows: int, layout: Layout) -> GradientStore:
    """The resumable row store of ``folder`` for evidence made from ``stamp`` (reopened when an
    unfinished build of the same stamp and layout left it; started anew otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP).unlink(missing_ok=True)  # the folder is not finished until it is rewritten
    key = fingerprint(stamp, layout.n_classes, layout.space_dims, layout.rerank_dims)
    return GradientStore(folder / ROWS, n_rows=n_rows, n_cols=layout.width, fingerprint=key)


def finish(folder: Path, stamp: dict[str, Any], layout: Layout, space_name: str) -> None:
    """Write ``stamp.json`` (last: the folder is used from now on); remove old-format files."""
    for name in OLD_FILES:
        (folder / name).unlink(missing_ok=True)
    files = {p.name: _file_stat(p) for p in _store_files(folder)}
    meta = {"stamp": stamp, "files": files, "space_name": space_name, "layout": vars(layout)}
    write_json_atomic(folder / STAMP, meta)


def write_evidence(evidence: Evidence, folder: Path, stamp: dict[str, Any]) -> None:
    """Write ``evidence`` (built in memory) to ``folder`` through the row store, chunk by
    chunk, ``stamp.json`` last."""
    folder = Path(folder)
    parts, pca = evidence.parts, evidence.rerank_pca
    layout = Layout.of(parts, pca)
    n = len(evidence.table)
    store = open_store(folder, stamp, n, layout)
    table = {c: evidence.table[c].to_numpy() for c in EVIDENCE_COLUMNS}
    for rows in _pending_chunks(store, n):
        store.write(rows, layout.pack(parts, pca, {c: v[rows] for c, v in table.items()}, rows))
    finish(folder, stamp, layout, parts.space_name)


def read_evidence(folder: Path, stamp: dict[str, Any] | None) -> Evidence | None:
    """The evidence in ``folder`` when its stamp is ``stamp`` and its files are the ones that
    stamp recorded; None otherwise (missing, stale, unfinished, damaged). The rows are
    memory-mapped."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / STAMP).read_text())
        if stamp is None or meta.get("stamp") != json.loads(json.dumps(stamp)):
            return None
        for name, recorded in meta["files"].items():
            if _file_stat(folder / name) != list(recorded):
                return None
        layout = Layout(**meta["layout"])
        store = GradientStore.open_readonly(folder / ROWS)
        if store is None or not store.complete or store.n_cols != layout.width:
            return None
        found = layout.unpack(store.array(), str(meta.get("space_name", "feature")))
    except Exception as err:  # json, OSError, numpy and a stray stamp raise unrelated types
        if (folder / STAMP).exists():
            log.warning(f"{folder} is unreadable; rebuilding it ({one_line(err, 80)})")
        return None
    return found


def load_or_build(
    run_dir: str | os.PathLike[str], *, seed: int = 0, write: bool = True
) -> Evidence | None:
    """The run's evidence: read back when fresh, else built (resuming an unfinished build) and
    written chunk by chunk when ``write`` and the run directory is writable (kept in memory
    otherwise). None without gradients."""
    run = RunDir(run_dir)
    stamp = input_stamp(run, seed)
    if stamp is None:
        return None
    found = read_evidence(run.evidence_dir, stamp)
    if found is not None:
        return found
    embeddings = np.load(run.gradients_path, mmap_mode="r")
    samples = run.read_samples()
    if not write:
        return build_evidence(embeddings, samples, seed)
    opened: list[GradientStore] = []

    def open_rows(layout: Layout) -> RowSink:
        try:
            opened.append(open_store(run.evidence_dir, stamp, len(samples), layout))
        except OSError as err:
            log.warning(f"the review evidence stays in memory: {one_line(err, 120)}")
            return ArrayRows(len(samples), layout.width)
        return opened[0]

    built = build_evidence(embeddings, samples, seed, open_rows=open_rows)
    if opened:
        layout = Layout.of(built.parts, built.rerank_pca)
        finish(run.evidence_dir, stamp, layout, built.parts.space_name)
    return built


def ensure_evidence(run_dir: str | os.PathLike[str], seed: int = 0) -> None:
    """Write the run's evidence when missing or stale (the pipeline's hook after the map); a
    failure is logged, never raised: the dashboard builds it itself then."""
    try:
        log.info("evidence: neighbours, suggestions and re-rank features for the review page")
        load_or_build(run_dir, seed=seed)
    except (OgadError, OSError, ValueError) as err:
        log.warning(f"the review evidence was not written: {one_line(err, 160)}")

"""The review evidence of a run, computed once and kept in its ``evidence/`` folder. Torch-free.

What the review page needs from the gradients for every row — the explainer's parts (the
model's distribution, the neighbour space, the gradient-norm percentiles), every row's
neighbours and suggested label (:meth:`Explainer.evidence`) and the re-ranker's PCA features
(:func:`pca_features`) — costs a pass over the gradients and an all-rows neighbour search. It is
written once (by ``ogad compute`` / ``ogad map``, or by the dashboard for runs made before) and
read back by every later server process::

    evidence/table.parquet     sample_id, margin, neighbour_agreement, suggested_label,
                               suggestion_confidence (sample_id order)
    evidence/probs.npy         (N, C) float64 the model's distribution
    evidence/space.npy         (N, k <= 32) float32 neighbour-space coordinates
    evidence/norm_pct.npy      (N,) float64 gradient-norm percentile within the given label
    evidence/rerank_pca.npy    (N, 16) float64 the re-ranker's PCA features
    evidence/stamp.json        written last: the inputs' stamp and each file's size and mtime

Each file is written atomically and ``stamp.json`` last; the folder is used only when the stamp
names the current gradients.npy and samples.parquet (size and mtime), the current parameters,
and files of exactly the recorded size and mtime. Anything else is stale: rebuilt, never used.
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

from ogad_core._internal import (
    log,
    one_line,
    write_json_atomic,
    write_table_atomic,
    write_with_atomic,
)
from ogad_core.errors import OgadError
from ogad_core.run.rundir import RunDir
from ogad_core.scoring import explain, rerank
from ogad_core.scoring.explain import Explainer, ExplainerParts
from ogad_core.space import knn as neighbours

__all__ = ["Evidence", "build_evidence", "input_stamp", "load_or_build", "read_evidence"]

#: bump when what the folder holds or how it is computed changes
FORMAT_VERSION = 1
TABLE, STAMP = "table.parquet", "stamp.json"
ARRAYS = ("probs", "space", "norm_pct", "rerank_pca")


@dataclass(frozen=True)
class Evidence:
    """Everything the review page derives from one run's gradients (see the module doc)."""

    parts: ExplainerParts
    #: Explainer.evidence(): one row per sample, sample_id order
    table: pd.DataFrame
    #: (N, k) float64 the re-ranker's PCA features
    rerank_pca: np.ndarray

    def explainer(self, samples: pd.DataFrame) -> Explainer:
        """The run's :class:`Explainer`, built without touching the gradients."""
        return Explainer(None, samples, None, parts=self.parts, evidence=self.table)


def build_evidence(
    embeddings: np.ndarray,
    samples: pd.DataFrame,
    seed: int = 0,
    *,
    on_explainer: Callable[[Explainer], None] | None = None,
) -> Evidence:
    """The :class:`Evidence` of (N, D) ``embeddings`` (array or memmap, sample_id order).

    ``on_explainer`` receives the :class:`Explainer` as soon as it exists, before the all-rows
    neighbour search (the dashboard explains a page of cards with it meanwhile).
    """
    found = Explainer(embeddings, samples, None, seed=seed)
    if on_explainer is not None:
        on_explainer(found)
    table = found.evidence()
    return Evidence(found.parts, table, rerank.pca_features(embeddings, seed=seed))


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


def _save_array(path: Path, array: np.ndarray) -> None:
    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array))

    write_with_atomic(path, writer)


def write_evidence(evidence: Evidence, folder: Path, stamp: dict[str, Any]) -> None:
    """Write ``evidence`` to ``folder``, each file atomically, ``stamp.json`` last."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = evidence.parts
    values = (parts.probs, parts.space, parts.norm_percentile, evidence.rerank_pca)
    arrays = dict(zip(ARRAYS, values, strict=True))
    write_table_atomic(evidence.table, folder / TABLE)
    for name, array in arrays.items():
        _save_array(folder / f"{name}.npy", array)
    files = {name: _file_stat(folder / name) for name in (TABLE, *(f"{a}.npy" for a in ARRAYS))}
    write_json_atomic(
        folder / STAMP, {"stamp": stamp, "files": files, "space_name": parts.space_name}
    )


def read_evidence(folder: Path, stamp: dict[str, Any] | None) -> Evidence | None:
    """The evidence in ``folder`` when its stamp is ``stamp`` and its files are the ones that
    stamp recorded; None otherwise (missing, stale, damaged). Arrays are memory-mapped."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / STAMP).read_text())
        if stamp is None or meta.get("stamp") != json.loads(json.dumps(stamp)):
            return None
        for name, recorded in meta["files"].items():
            if _file_stat(folder / name) != list(recorded):
                return None
        arrays = {a: np.load(folder / f"{a}.npy", mmap_mode="r") for a in ARRAYS}
        table = pd.read_parquet(folder / TABLE, engine="pyarrow")
    except Exception as err:  # json, OSError, pyarrow and numpy raise unrelated types
        if (folder / STAMP).exists():
            log.warning(f"{folder} is unreadable; rebuilding it ({one_line(err, 80)})")
        return None
    parts = ExplainerParts(
        probs=arrays["probs"],
        space=arrays["space"],
        space_name=str(meta.get("space_name", "feature")),
        norm_percentile=arrays["norm_pct"],
    )
    n = len(table)
    if any(a.shape[0] != n for a in arrays.values()):
        return None
    return Evidence(parts, table, arrays["rerank_pca"])


def load_or_build(
    run_dir: str | os.PathLike[str], *, seed: int = 0, write: bool = True
) -> Evidence | None:
    """The run's evidence: read back when fresh, else built (and written when ``write`` and
    the run directory is writable; kept in memory otherwise). None without gradients."""
    run = RunDir(run_dir)
    stamp = input_stamp(run, seed)
    if stamp is None:
        return None
    found = read_evidence(run.evidence_dir, stamp)
    if found is not None:
        return found
    embeddings = np.load(run.gradients_path, mmap_mode="r")
    built = build_evidence(embeddings, run.read_samples(), seed)
    if write:
        try:
            write_evidence(built, run.evidence_dir, stamp)
        except OSError as err:
            log.warning(f"the review evidence stays in memory: {one_line(err, 120)}")
    return built


def ensure_evidence(run_dir: str | os.PathLike[str], seed: int = 0) -> None:
    """Write the run's evidence when missing or stale (the pipeline's hook after the map); a
    failure is logged, never raised: the dashboard builds it itself then."""
    try:
        log.info("evidence: neighbours, suggestions and re-rank features for the review page")
        load_or_build(run_dir, seed=seed)
    except (OgadError, OSError, ValueError) as err:
        log.warning(f"the review evidence was not written: {one_line(err, 160)}")

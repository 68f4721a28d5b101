"""Steps 5 and 6, scores and map (torch-free): score the stored gradients with outlier detectors
-> scores.parquet, and draw them in 2-D with UMAP -> map.parquet; then the review page's
evidence (neighbours, suggestions, re-rank features) -> evidence/."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from ogad_core._internal import log, one_line, utc_now, write_table_atomic
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.options import fingerprint
from ogad_core.run.lock import run_lock
from ogad_core.run.manifest import Manifest, StepRecord
from ogad_core.run.rundir import RunDir, table_problem
from ogad_core.run.store import verify_gradients

EMBEDDINGS = ("final", "checkpoints")


def _require_gradients(rd: RunDir, manifest: Manifest) -> None:
    if not manifest.is_done("gradients"):
        raise RunDirError(f"{rd.path} has no finished gradients step; run `ogad compute` first")


def _finish(rd: RunDir, manifest: Manifest, step: str, fp: str, started: float) -> None:
    seconds = round(time.perf_counter() - started, 3)
    manifest.mark_done(step, StepRecord(fingerprint=fp, seconds=seconds, finished=utc_now()))
    rd.save_manifest(manifest)


def load_embeddings(
    rd: RunDir, manifest: Manifest, embedding: str = "final", *, verify: bool = False
) -> np.ndarray:
    """The gradient embeddings to score: ``final`` (gradients.npy, (N, D), memory-mapped) or
    ``checkpoints`` (each checkpoint's gradients side by side, (N, K * D)).

    ``verify``: check each file's block checksums and finite values first (RunDirError naming
    the damage and the command that rebuilds it)."""
    if embedding not in EMBEDDINGS:
        raise ConfigError(
            f"embedding must be final or checkpoints, got {embedding!r}", param="embedding"
        )
    k = int(manifest.dims.get("n_checkpoints", 1))
    paths = [rd.checkpoint_gradients_path(i) for i in range(k - 1)] if embedding != "final" else []
    if verify:
        for path in [*paths, rd.gradients_path]:
            verify_gradients(path, n_rows=manifest.n_samples, n_cols=manifest.dims.get("stored"))
    final = np.load(rd.gradients_path, mmap_mode="r")
    if embedding == "final":
        return final
    parts = [np.load(path, mmap_mode="r") for path in paths]
    return np.hstack([*parts, final]) if parts else final


def _merge_with_earlier(rd: RunDir, table: pd.DataFrame) -> pd.DataFrame:
    """Keep the columns of detectors scored earlier (same samples) beside the new ones."""
    if not rd.scores_path.is_file():
        return table
    try:
        old = rd.read_scores()
    except RunDirError as err:
        log.warning(f"{rd.scores_path.name} was damaged; rebuilding it ({one_line(err, 80)})")
        return table
    if len(old) != len(table) or not (old["sample_id"].to_numpy() == table["sample_id"]).all():
        return table
    keep = [c for c in old.columns if c != "sample_id" and c not in table.columns]
    return pd.concat([table, old[keep]], axis=1)


def score(
    run_dir: str | os.PathLike[str],
    detectors: list[str] | tuple[str, ...],
    *,
    per_class: bool = False,
    seed: int = 0,
    embedding: str = "final",
    manifest: Manifest | None = None,
) -> pd.DataFrame:
    """Score the run's gradients with ``detectors``; writes scores.parquet (merging columns
    of detectors scored earlier), holding the run directory's lock. Returns the written table."""
    with run_lock(run_dir, "score"):
        return _score(RunDir(run_dir), list(detectors), per_class, seed, embedding, manifest)


def _score(
    rd: RunDir,
    detectors: list[str],
    per_class: bool,
    seed: int,
    embedding: str,
    manifest: Manifest | None,
) -> pd.DataFrame:
    from ogad_core.scoring.detectors import score_table

    standalone = manifest is None  # else compute has just checked or written the gradients
    manifest = manifest if manifest is not None else rd.load_manifest()
    _require_gradients(rd, manifest)
    started = time.perf_counter()
    grads = load_embeddings(rd, manifest, embedding, verify=standalone)
    table = score_table(grads, rd.read_samples(), list(detectors), per_class=per_class, seed=seed)
    if embedding != "final":
        rename = {
            c: c.replace("_score", "_ckpt_score").replace("_rank", "_ckpt_rank")
            for c in table.columns
            if c != "sample_id"
        }
        table = table.rename(columns=rename)
    table = _merge_with_earlier(rd, table)
    write_table_atomic(table, rd.scores_path)
    names = [c[: -len("_score")] for c in table.columns if c.endswith("_score")]
    manifest.detectors = names
    manifest.scoring = {"per_class": per_class, "seed": seed, "embedding": embedding}
    grad_fp = manifest.step_fingerprint("gradients")
    _finish(
        rd, manifest, "scores", fingerprint(grad_fp, names, per_class, seed, embedding), started
    )
    log.info(f"scores: {', '.join(names)}")
    return table


def make_map(
    run_dir: str | os.PathLike[str], *, seed: int = 0, manifest: Manifest | None = None
) -> pd.DataFrame:
    """2-D UMAP map of the gradient embeddings -> map.parquet (cached by fingerprint), then the
    review page's evidence -> evidence/ (when missing or stale), holding the run directory's
    lock."""
    from ogad_core.scoring.evidence import ensure_evidence

    with run_lock(run_dir, "map"):
        table = _make_map(RunDir(run_dir), seed, manifest)
        ensure_evidence(run_dir)
        return table


def _make_map(rd: RunDir, seed: int, manifest: Manifest | None) -> pd.DataFrame:
    standalone = manifest is None
    manifest = manifest if manifest is not None else rd.load_manifest()
    _require_gradients(rd, manifest)
    fp = fingerprint(manifest.step_fingerprint("gradients"), seed)
    if manifest.is_done("map", fp) and rd.map_path.is_file():
        problem = table_problem(rd.map_path)
        if problem is None:
            log.info("map: reusing the cached map")
            return rd.read_map()
        log.warning(f"{rd.map_path.name} was damaged ({problem}); rebuilding it")
    from ogad_core.scoring.gradient_map import gradient_map

    started = time.perf_counter()
    grads = load_embeddings(rd, manifest, "final", verify=standalone)
    log.info("map: UMAP of the gradient embeddings (the first run compiles numba: ~30 s)")
    xy = gradient_map(grads, seed=seed)
    table = pd.DataFrame(
        {
            "sample_id": np.arange(xy.shape[0], dtype=np.int64),
            "x": xy[:, 0].astype(np.float32),
            "y": xy[:, 1].astype(np.float32),
        }
    )
    write_table_atomic(table, rd.map_path)
    _finish(rd, manifest, "map", fp, started)
    return table

"""Steps 5 and 6, scores and map (torch-free): score the stored gradients with outlier detectors
-> scores.parquet, and draw them in 2-D with UMAP -> map.parquet; then the review page's
evidence (neighbours, suggestions, re-rank features) -> evidence/."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ogad_core._internal import log, one_line, utc_now, write_table_atomic
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.options import DEFAULT_DETECTORS, fingerprint
from ogad_core.pipeline.state import FileStep, RunFiles
from ogad_core.run.lock import run_lock
from ogad_core.run.manifest import Manifest, StepRecord
from ogad_core.run.rundir import RunDir, table_problem
from ogad_core.run.store import verify_gradients

EMBEDDINGS = ("final", "checkpoints")
#: above this many rows LOF (quadratic) is left out of the default detectors
LOF_MAX_ROWS = 10_000


def _require_gradients(rd: RunDir, manifest: Manifest) -> None:
    if not manifest.is_done("gradients"):
        raise RunDirError(f"{rd.path} has no finished gradients step; run `ogad compute` first")


def _require_checkpoints(rd: RunDir, manifest: Manifest, embedding: str) -> None:
    """ConfigError when ``--embedding checkpoints`` asks for a run's earlier checkpoints and it
    kept none (its ``_ckpt`` scores would only repeat the final ones under another name)."""
    if embedding == "checkpoints" and int(manifest.dims.get("n_checkpoints", 1)) < 2:
        raise ConfigError(
            f"{rd.path} kept no earlier checkpoints, so --embedding checkpoints would score the "
            "final gradients again; compute the run with --checkpoints K (K >= 2) first",
            param="embedding",
        )


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


@dataclass(frozen=True)
class ScoreStep:
    """Score the run's gradients with ``detectors`` -> scores.parquet (merging the columns of
    detectors scored earlier). ``detectors`` None: the run's configured ones (less LOF above
    :data:`LOF_MAX_ROWS` rows)."""

    detectors: tuple[str, ...] | None = None
    per_class: bool = False
    seed: int = 0
    embedding: str = "final"
    name: str = "scores"

    def __call__(self, run: RunFiles) -> StepRecord:
        from ogad_core.scoring.detectors import check_detectors, score_table

        rd, manifest = run.rd, run.manifest
        _require_gradients(rd, manifest)
        _require_checkpoints(rd, manifest, self.embedding)
        started = time.perf_counter()
        detectors = list(self.detectors or default_detectors(manifest))
        check_detectors(detectors, self.seed)  # a bad one stops before the gradients load
        grads = load_embeddings(rd, manifest, self.embedding, verify=not run.fresh_gradients)
        table = score_table(
            grads, rd.read_samples(), detectors, per_class=self.per_class, seed=self.seed
        )
        table = _merge_with_earlier(rd, _checkpoint_names(table, self.embedding))
        write_table_atomic(table, rd.scores_path)
        names = [c[: -len("_score")] for c in table.columns if c.endswith("_score")]
        manifest.detectors = names
        manifest.scoring = {
            "per_class": self.per_class,
            "seed": self.seed,
            "embedding": self.embedding,
        }
        grad_fp = manifest.step_fingerprint("gradients")
        fp = fingerprint(grad_fp, names, self.per_class, self.seed, self.embedding)
        log.info(f"scores: {', '.join(names)}")
        return run.mark(self.name, fp, started)


def _checkpoint_names(table: pd.DataFrame, embedding: str) -> pd.DataFrame:
    """Columns ``D_ckpt_score`` / ``D_ckpt_rank`` for scores of the checkpoint embeddings."""
    if embedding == "final":
        return table
    rename = {
        c: c.replace("_score", "_ckpt_score").replace("_rank", "_ckpt_rank")
        for c in table.columns
        if c != "sample_id"
    }
    return table.rename(columns=rename)


def default_detectors(manifest: Manifest) -> list[str]:
    """The run's configured detectors, less LOF above :data:`LOF_MAX_ROWS` rows."""
    detectors = list(manifest.config.get("detectors") or DEFAULT_DETECTORS)
    if "lof" in detectors and manifest.n_samples > LOF_MAX_ROWS:
        detectors.remove("lof")
        log.info(
            f"scores: lof skipped by default above {LOF_MAX_ROWS} rows "
            "(ask for it with `ogad score --detector lof`)"
        )
    return detectors


@dataclass(frozen=True)
class MapStep:
    """2-D UMAP map of the gradient embeddings -> map.parquet (reused under its fingerprint)."""

    seed: int = 0
    name: str = "map"

    def __call__(self, run: RunFiles) -> StepRecord:
        rd, manifest = run.rd, run.manifest
        _require_gradients(rd, manifest)
        fp = fingerprint(manifest.step_fingerprint("gradients"), self.seed)
        done = manifest.steps.get(self.name)
        if done is not None and manifest.is_done(self.name, fp) and rd.map_path.is_file():
            problem = table_problem(rd.map_path)
            if problem is None:
                log.info("map: reusing the cached map")
                return done
            log.warning(f"{rd.map_path.name} was damaged ({problem}); rebuilding it")
        from ogad_core.scoring.gradient_map import gradient_map

        started = time.perf_counter()
        grads = load_embeddings(rd, manifest, "final", verify=not run.fresh_gradients)
        log.info("map: UMAP of the gradient embeddings (the first run compiles numba: ~30 s)")
        xy = gradient_map(grads, seed=self.seed)
        ids = np.arange(xy.shape[0], dtype=np.int64)
        table = pd.DataFrame({"sample_id": ids, "x": xy[:, 0], "y": xy[:, 1]})
        write_table_atomic(table.astype({"x": np.float32, "y": np.float32}), rd.map_path)
        return run.mark(self.name, fp, started)


@dataclass(frozen=True)
class EvidenceStep:
    """The review page's evidence (neighbours, suggestions, re-rank features) -> evidence/,
    when missing or stale. Its record is ``evidence/stamp.json`` (derived files, safe to
    delete), so the manifest does not list it; a failure is logged, never raised (the
    dashboard then builds the evidence itself)."""

    seed: int = 0
    name: str = "evidence"

    def __call__(self, run: RunFiles) -> StepRecord:
        from ogad_core.scoring.evidence import ensure_evidence, input_stamp

        started = time.perf_counter()
        ensure_evidence(run.rd.path, seed=self.seed)
        stamp = input_stamp(run.rd, self.seed)
        seconds = round(time.perf_counter() - started, 3)
        fp = fingerprint(stamp) if stamp is not None else ""
        return StepRecord(fingerprint=fp, seconds=seconds, finished=utc_now())


def run_standalone(
    run_dir: str | os.PathLike[str], command: str, steps: list[FileStep]
) -> list[StepRecord]:
    """Run ``steps`` on an existing run, holding its lock (the path ``ogad score`` and
    ``ogad map`` take; ``compute`` runs the same steps on its own state)."""
    with run_lock(run_dir, command):
        run = RunFiles.reopen(RunDir(run_dir))
        return [step(run) for step in steps]


def score(
    run_dir: str | os.PathLike[str],
    detectors: list[str] | tuple[str, ...],
    *,
    per_class: bool = False,
    seed: int = 0,
    embedding: str = "final",
) -> pd.DataFrame:
    """``ogad score``: the :class:`ScoreStep` on an existing run; returns scores.parquet."""
    step = ScoreStep(tuple(detectors), per_class=per_class, seed=seed, embedding=embedding)
    run_standalone(run_dir, "score", [step])
    return RunDir(run_dir).read_scores()


def make_map(run_dir: str | os.PathLike[str], *, seed: int = 0) -> pd.DataFrame:
    """``ogad map``: the :class:`MapStep` then the :class:`EvidenceStep` on an existing run;
    returns map.parquet."""
    run_standalone(run_dir, "map", [MapStep(seed), EvidenceStep(seed)])
    return RunDir(run_dir).read_map()

"""Step 7, issues (torch-free): every issue type on the run's gradients, features and input
properties -> issues.parquet, recorded in the manifest under a fingerprint of its inputs.

``ogad compute`` runs it after the map; ``ogad issues DIR`` reruns it on a finished run (no
retraining: the features are recovered from the stored gradients, the input properties were
recorded by the data step — an older run gets them from its sample images or texts once).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ogad_core._internal import log, utc_now, write_table_atomic
from ogad_core.errors import DataError, RunDirError
from ogad_core.issues.base import IssueContext
from ogad_core.issues.holdout import Holdout
from ogad_core.issues.registry import DEFAULT_ISSUE_TYPES, resolve_issue_types
from ogad_core.issues.table import fit_issue_types, issues_table
from ogad_core.options import DEFAULT_DETECTOR, fingerprint
from ogad_core.pipeline.state import RunFiles
from ogad_core.run.lock import run_lock
from ogad_core.run.manifest import Manifest, StepRecord
from ogad_core.run.rundir import RunDir, table_problem

STEP = "issues"
#: bumped when a built-in issue type's scoring changes (a run's issues.parquet is then redone)
ISSUES_VERSION = 34


def _params(spec: str) -> dict[str, str]:
    """An issue type's parameters as text (part of the step's fingerprint)."""
    from ogad_core.issues.registry import resolve_issue_type

    return {k: repr(v) for k, v in resolve_issue_type(spec).get_params().items()}


@dataclass
class IssueStep:
    """Fit the issue types on the run -> issues.parquet (reused under its fingerprint: the
    gradients, scores, data, the types with their parameters, the seed, ISSUES_VERSION)."""

    issue_types: tuple[str, ...] = DEFAULT_ISSUE_TYPES
    seed: int = 0
    name: str = STEP
    #: the held-out split's spec (None: the one ``ogad compute --holdout`` recorded, if any)
    holdout: str | None = None
    #: threads of the duplicate type's verification (``--workers``; None: the CPU count,
    #: at most 8); no stored result depends on it
    workers: int | None = None

    def __call__(self, run: RunFiles) -> StepRecord:
        rd, manifest = run.rd, run.manifest
        if not manifest.is_done("gradients") or not manifest.is_done("scores"):
            raise RunDirError(f"{rd.path} has no finished gradients and scores; run `ogad compute`")
        types = list(self.issue_types)
        resolve_issue_types(types)  # a bad or repeated type stops before any work
        holdout = _held_out(rd, manifest, self.holdout)
        fp = fingerprint(
            manifest.step_fingerprint("gradients"),
            manifest.step_fingerprint("scores"),
            manifest.step_fingerprint("data"),
            [(t, _params(t)) for t in types],
            self.seed,
            ISSUES_VERSION,
            None if holdout is None else holdout.fingerprint,
        )
        done = manifest.steps.get(self.name)
        if done is not None and manifest.is_done(self.name, fp) and rd.issues_path.is_file():
            if table_problem(rd.issues_path) is None:
                log.info("issues: reusing issues.parquet")
                return done
            log.warning(f"{rd.issues_path.name} was damaged; rebuilding it")
        started = time.perf_counter()
        context = load_context(rd, manifest, seed=self.seed)
        context.holdout, context.workers = holdout, self.workers
        fitted = fit_issue_types(context, types)
        table = issues_table(fitted, context.samples["sample_id"].to_numpy())
        write_table_atomic(table, rd.issues_path)
        records = {
            e.name: {"flagged": int(e.flagged_.sum()), "threshold": type(e).threshold_doc}
            for e in fitted
        }  # each queue's own count and rule (the dashboard's queue header)
        for e in fitted:  # the label type's detector: the dashboard's label queue follows it
            if isinstance(getattr(e, "detector_", None), str):
                records[e.name]["detector"] = e.detector_
        return run.mark(self.name, fp, started, types=records)


def _held_out(rd: RunDir, manifest: Manifest, given: str | None) -> Holdout | None:
    """The held-out split: ``given`` (``--holdout``), else the one ``compute --holdout``
    recorded or the data spec carries. A recorded split whose folder or file is gone since is
    left out with one warning (the other types still run; leakage flags nothing)."""
    from ogad_core.data.sources import check_spec_path
    from ogad_core.issues.holdout import load_holdout

    if given:
        return load_holdout(rd, given, manifest.config)
    spec = (manifest.config or {}).get("holdout") or _carried_held_out(manifest)
    if not spec:
        return None
    try:
        check_spec_path(spec, "the held-out split")
    except DataError as err:
        log.warning(f"issues: {err}; leakage is not checked (give --holdout SPEC)")
        return None
    return load_holdout(rd, spec, manifest.config)


def _carried_held_out(manifest: Manifest) -> str | None:
    """The held-out split the run's data spec carries (an ImageFolder's test/), if any."""
    from ogad_core.data.sources import spec_held_out

    return spec_held_out(str(manifest.data.get("spec", "")))


def find_issues(
    run_dir: str | os.PathLike[str],
    issue_types: Sequence[str] = DEFAULT_ISSUE_TYPES,
    *,
    seed: int = 0,
    holdout: str | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """``ogad issues``: the :class:`IssueStep` on an existing run, holding its lock; returns
    issues.parquet. ``holdout``: the held-out split (else the one the run recorded);
    ``workers``: the verification's threads (default: the CPU count, at most 8)."""
    from ogad_core.pipeline.score_step import run_standalone

    step = IssueStep(tuple(issue_types), seed=seed, holdout=holdout, workers=workers)
    run_standalone(run_dir, STEP, [step])
    return RunDir(run_dir).read_issues()


def load_context(rd: RunDir, manifest: Manifest, *, seed: int = 0) -> IssueContext:
    """Everything the issue types read from a run (features recovered, input properties
    recorded once when missing)."""
    from ogad_core.issues.features import ensure_features

    samples = rd.read_samples()
    _ensure_inputs(rd, manifest, samples)
    inputs = pd.read_parquet(rd.inputs_path) if rd.inputs_path.is_file() else None
    signatures = np.load(rd.signatures_path) if rd.signatures_path.is_file() else None
    reg = rd.registration_path
    registration = np.load(reg, mmap_mode="r") if reg.is_file() else None
    detectors = rd.detectors()
    detector = DEFAULT_DETECTOR if DEFAULT_DETECTOR in detectors else next(iter(detectors), None)
    train = manifest.steps.get("train")
    test_accuracy = train.extra.get("test_accuracy") if train is not None else None
    embeddings = _encoder_embeddings(rd, len(samples))
    return IssueContext(
        samples=samples,
        label_names=list(manifest.label_names),
        kind=manifest.data_kind,
        gradients=np.load(rd.gradients_path, mmap_mode="r"),
        features=ensure_features(rd, manifest),
        embeddings=embeddings,
        embedding_blocks=_embedding_blocks(manifest, embeddings),
        inputs=inputs,
        signatures=signatures,
        registration=registration,
        scores=rd.read_scores(),
        detector=detector,
        seed=seed,
        test_accuracy=test_accuracy,
    )


def _embedding_blocks(manifest: Manifest, embeddings: np.ndarray | None) -> int:
    """The text encoder's hidden states concatenated in ``embeddings`` (1: one block, as for
    an image encoder's features: its name has no transformer config whose layers make up the
    width)."""
    if embeddings is None:
        return 1
    from ogad_core.engine.text_encoder import layer_blocks

    return layer_blocks((manifest.config or {}).get("encoder"), int(embeddings.shape[1]))


def _encoder_embeddings(rd: RunDir, n: int) -> np.ndarray | None:
    """(N, E) the encoder's cached features of the train samples: the newest cache in
    embeddings/ (a ``.npy`` with its ``.done.npy`` mask) whose first N rows are all done, or
    None."""
    if not rd.embeddings_dir.is_dir():
        return None
    caches = [p for p in rd.embeddings_dir.glob("*.npy") if not p.name.endswith(".done.npy")]
    for path in sorted(caches, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        done_path = path.with_name(path.stem + ".done.npy")
        try:
            matrix = np.load(path, mmap_mode="r")
            done = np.load(done_path, mmap_mode="r") if done_path.is_file() else None
        except (OSError, ValueError):
            continue
        if done is None or matrix.ndim != 2 or len(matrix) < n or not np.asarray(done[:n]).all():
            continue
        return matrix[:n]
    return None


def _ensure_inputs(rd: RunDir, manifest: Manifest, samples: pd.DataFrame) -> None:
    """Record inputs.parquet for a run made before the issue types (one read of its images:
    the sample sets' PNGs in data/, or the user's files; texts from samples.parquet)."""
    from ogad_core.issues.inputs import STORED_INPUTS, inputs_recorded, record_inputs

    if inputs_recorded(rd, len(samples)):
        return
    stored = STORED_INPUTS.get(str(manifest.data.get("kind")))
    inputs = None if stored is None else stored(rd, manifest, samples)
    if inputs is not None:
        record_inputs(rd, inputs)


def features_map(
    run_dir: str | os.PathLike[str], *, seed: int = 0, manifest: Manifest | None = None
) -> pd.DataFrame:
    """The 2-D map of the model's features (UMAP, as the gradient map) -> map_features.parquet,
    reused while the gradients are unchanged; RunDirError when the run keeps no features."""
    from ogad_core.issues.features import ensure_features
    from ogad_core.scoring.gradient_map import gradient_map

    with run_lock(run_dir, "map"):
        rd = RunDir(run_dir)
        manifest = manifest if manifest is not None else rd.load_manifest()
        fp = fingerprint("features-map", manifest.step_fingerprint("gradients"), seed)
        if manifest.is_done("features_map", fp) and rd.features_map_path.is_file():
            return pd.read_parquet(rd.features_map_path)
        feats = ensure_features(rd, manifest)
        if feats is None:
            raise RunDirError(
                f"{rd.path} keeps no model features (its gradients are projected or not the "
                "last layer's); only the gradient map can be drawn"
            )
        started = time.perf_counter()
        log.info("map: UMAP of the model's features")
        xy = gradient_map(np.asarray(feats), seed=seed)
        table = pd.DataFrame(
            {
                "sample_id": np.arange(len(xy), dtype=np.int64),
                "x": xy[:, 0].astype(np.float32),
                "y": xy[:, 1].astype(np.float32),
            }
        )
        write_table_atomic(table, rd.features_map_path)
        seconds = round(time.perf_counter() - started, 3)
        record = StepRecord(fingerprint=fp, seconds=seconds, finished=utc_now())
        manifest.mark_done("features_map", record)
        rd.save_manifest(manifest)
        return table

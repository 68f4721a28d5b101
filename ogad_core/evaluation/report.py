"""``ogad evaluate``: evaluate a run against its known label noise, write ``evaluation.json``.

:func:`evaluate_run` is the orchestrator; each concern has its module:

* :mod:`~ogad_core.evaluation.schema` -- the report's typed schema (torch-free);
* :mod:`~ogad_core.evaluation.plans` -- which samples each retraining keeps;
* :mod:`~ogad_core.evaluation.context` -- the run re-loaded for training;
* :mod:`~ogad_core.evaluation.baselines` -- cleanlab and TracIn, merged into scores.parquet;
* :mod:`~ogad_core.evaluation.retrain` -- trim, retrain, held-out test accuracy;
* :mod:`~ogad_core.evaluation.cost` -- timings and the quality bar against cleanlab;
* :mod:`~ogad_core.evaluation.formatting` -- the text tables ``ogad evaluate`` prints.

A later evaluation keeps the baselines and retraining results of the previous report while the
score columns they were computed from are unchanged (``score_digest``).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ogad_core._internal import log, utc_now
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.evaluation.baselines import (
    DEFAULT_FOLDS,
    cleanlab_baseline,
    column_digest,
    merge_scores,
    tracin_baseline,
)
from ogad_core.evaluation.context import (
    NotTrainableError,
    RunContext,
    flipped_flags,
    load_context,
    require_test_split,
)
from ogad_core.evaluation.cost import (
    Timings,
    compute_cost,
    detection_rows,
    ratio_same_load,
    run_gradient_seconds,
    time_detectors,
    time_gradients,
    training_seconds,
)
from ogad_core.evaluation.formatting import format_report
from ogad_core.evaluation.plans import DEFAULT_TRIM_PERCENTS, validate_trims
from ogad_core.evaluation.retrain import retrain_methods
from ogad_core.evaluation.schema import (
    BASELINES,
    EVALUATION_JSON,
    Baselines,
    CleanlabInfo,
    DataInfo,
    DetectionRow,
    EvaluationReport,
    MachineInfo,
    ModelInfo,
    ReportError,
    RetrainResults,
    read_report,
)
from ogad_core.run.manifest import Manifest
from ogad_core.run.rundir import RunDir

__all__ = ["EVALUATION_JSON", "EvaluationRequest", "evaluate_run", "format_report"]


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate (see :func:`evaluate_run`'s arguments)."""

    retrain: bool
    baselines: bool
    trim_percents: list[float]
    seeds: int
    detectors: list[str] | None
    folds: int
    time_detectors: bool


# ---- checks ---------------------------------------------------------------------------------


def _check_request(rd: RunDir, manifest: Manifest, req: EvaluationRequest) -> None:
    """ConfigError / RunDirError for a request the run cannot answer."""
    if not manifest.is_done("scores"):
        raise RunDirError(f"{rd.path} has no finished scores step; run `ogad compute` first")
    if req.seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {req.seeds}", param="seeds")
    if req.folds < 2:
        raise ConfigError(
            f"folds must be >= 2 (cleanlab cross-validation), got {req.folds}", param="folds"
        )
    if req.retrain:
        validate_trims(req.trim_percents)


def _check_methods(scored: list[str], detectors: Sequence[str], *, baselines: bool) -> None:
    """ConfigError when a method to retrain with has (and will have) no score column."""
    will_have = [*scored, *(BASELINES if baselines else ())]
    missing = [m for m in detectors if m not in will_have]
    if missing:
        hint = "" if baselines else " (cleanlab and tracin need `baselines`)"
        raise ConfigError(f"no scores for {', '.join(missing)}; scored: {', '.join(scored)}{hint}")


def _read_tables(rd: RunDir) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(samples, (N,) is_flipped, scores), checked to list the same samples."""
    samples = rd.read_samples()
    flags = flipped_flags(samples, rd.path)
    scores = rd.read_scores()
    if len(scores) != len(samples) or not np.array_equal(scores["sample_id"], samples["sample_id"]):
        raise RunDirError(f"{rd.path}: scores.parquet and samples.parquet list different samples")
    return samples, flags, scores


def _scored(scores: pd.DataFrame) -> list[str]:
    return [c[: -len("_score")] for c in scores.columns if c.endswith("_score")]


# ---- the previous report --------------------------------------------------------------------


def _previous_report(rd: RunDir) -> EvaluationReport | None:
    """The run's earlier evaluation.json (None when there is none or it cannot be used)."""
    path = rd.evaluation_path
    if not path.is_file():
        return None
    try:
        return read_report(path).report
    except ReportError:
        return None


def _previous_baselines(
    previous: EvaluationReport | None, scores: pd.DataFrame
) -> Baselines | None:
    """Baseline info of an earlier report whose columns are still those in scores."""
    if previous is None or previous.baselines is None:
        return None
    old = previous.baselines
    kept = Baselines(
        cleanlab=old.cleanlab
        if old.cleanlab and old.cleanlab.score_digest == column_digest(scores, "cleanlab")
        else None,
        tracin=old.tracin
        if old.tracin and old.tracin.score_digest == column_digest(scores, "tracin")
        else None,
    )
    return kept if kept.items() else None


def _previous_retrain(
    previous: EvaluationReport | None, scores: pd.DataFrame
) -> RetrainResults | None:
    """The retrain section of an earlier report, kept when every method it trimmed still has
    exactly the scores it was trimmed by (else None: those results are stale)."""
    section = previous.retrain if previous is not None else None
    if previous is None or section is None or not section.score_digests:
        return None
    if any(column_digest(scores, m) != d for m, d in section.score_digests.items()):
        return None
    return replace(section, from_report_created=section.from_report_created or previous.created)


# ---- the new parts --------------------------------------------------------------------------


def _run_baselines(ctx: RunContext, folds: int) -> tuple[Baselines, pd.DataFrame]:
    """TracIn and cleanlab, merged into scores.parquet; returns their info and the new table."""
    log.info("evaluate: TracIn self-influence over the stored checkpoint gradients")
    tracin, tracin_info = tracin_baseline(ctx.rd, ctx.manifest, ctx.recipe.lr)
    new = {"tracin": tracin}
    try:
        log.info(f"evaluate: cleanlab on {folds}-fold cross-validated predicted probabilities")
        new["cleanlab"], cl_info = cleanlab_baseline(ctx, folds=folds)
    except NotTrainableError as err:
        log.info(f"evaluate: cleanlab skipped: {err}")
        cl_info = CleanlabInfo(skipped=str(err))
    scores = merge_scores(ctx.rd, ctx.manifest, new)
    tracin_info.score_digest = column_digest(scores, "tracin")
    if "cleanlab" in new:
        cl_info.score_digest = column_digest(scores, "cleanlab")
    return Baselines(cleanlab=cl_info, tracin=tracin_info), scores


def _retrain(ctx: RunContext, scores: pd.DataFrame, req: EvaluationRequest) -> RetrainResults:
    """Retrain with the requested methods (default: every scored column)."""
    scored = _scored(scores)
    methods = list(req.detectors) if req.detectors is not None else scored
    _check_methods(scored, methods, baselines=False)
    seeds = [ctx.config.seed + i for i in range(req.seeds)]
    return retrain_methods(ctx, scores, methods, validate_trims(req.trim_percents), seeds)


def _timings(
    rd: RunDir,
    manifest: Manifest,
    samples: pd.DataFrame,
    names: list[str],
    req: EvaluationRequest,
    ctx: RunContext | None,
) -> Timings:
    """Detector fits re-timed (when asked), gradient seconds (re-timed with baselines)."""
    detectors = time_detectors(rd, manifest, samples, names) if req.time_detectors else {}
    grad: float | None
    grad_source: str | None
    if req.baselines and ctx is not None:
        grad, grad_source = time_gradients(ctx)
    else:
        grad, grad_source = run_gradient_seconds(manifest)
    return Timings(
        detectors=detectors,
        train=None,
        train_source=None,
        gradient=grad,
        gradient_source=grad_source,
        n_checkpoints=int(manifest.dims.get("n_checkpoints", 1)),
    )


def _machine(device: str | None) -> MachineInfo:
    torch = sys.modules.get("torch")  # only when this evaluation trained: never import it here
    return MachineInfo(
        cpus=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        device=device,
        torch=None if torch is None else str(torch.__version__),
        torch_threads=None if torch is None else int(torch.get_num_threads()),
    )


def _data_and_model(manifest: Manifest, flags: np.ndarray) -> tuple[DataInfo, ModelInfo]:
    data, model = manifest.data, manifest.model
    return (
        DataInfo(
            spec=data.get("spec"),
            kind=data.get("kind"),
            n_train=int(flags.shape[0]),
            n_test=data.get("n_test"),
            n_classes=data.get("n_classes"),
            noise=data.get("noise"),
            n_flipped=int(flags.sum()),
        ),
        ModelInfo(
            model_class=model.get("class"),
            recipe=model.get("recipe"),
            test_accuracy=model.get("test_accuracy"),
            params=manifest.params,
            n_checkpoints=int(manifest.dims.get("n_checkpoints", 1)),
        ),
    )


def _write(rd: RunDir, report: EvaluationReport) -> None:
    try:
        report.write(rd.evaluation_path)
    except OSError as err:
        log.warning(f"evaluate: could not write {rd.evaluation_path}: {err.strerror or err}")


# ---- the orchestrator -----------------------------------------------------------------------


def evaluate_run(
    run_dir: str | Path,
    *,
    retrain: bool,
    baselines: bool,
    trim_percents: Sequence[float] = DEFAULT_TRIM_PERCENTS,
    seeds: int = 3,
    detectors: Sequence[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    time_detectors: bool = True,
) -> EvaluationReport:
    """Evaluate a run with known noise; writes ``evaluation.json`` into the run dir.

    Args:
        run_dir: a complete run computed with ``--noise``.
        retrain: trim each method's top k% and retrain (needs the run's held-out test split).
        baselines: add the cleanlab (K-fold CV) and TracIn columns to scores.parquet.
        trim_percents: the k values for ``retrain`` (percent of the training samples).
        seeds: number of training seeds for ``retrain`` (the run's seed, +1, ...).
        detectors: the methods to retrain with (default: every scored column).
        folds: cross-validation folds of the cleanlab baseline.
        time_detectors: re-fit each detector once to time it.
    Returns:
        the report (see :mod:`ogad_core.evaluation.schema`, :func:`format_report`).
    """
    req = EvaluationRequest(
        retrain=retrain,
        baselines=baselines,
        trim_percents=[float(k) for k in trim_percents],
        seeds=seeds,
        detectors=None if detectors is None else list(detectors),
        folds=folds,
        time_detectors=time_detectors,
    )
    return _evaluate(RunDir(run_dir), req)


def _evaluate(rd: RunDir, req: EvaluationRequest) -> EvaluationReport:
    """:func:`evaluate_run` once its arguments are gathered: check, measure, assemble, write."""
    from ogad_core.scoring.metrics import evaluation_table

    manifest = rd.load_manifest()
    _check_request(rd, manifest, req)
    samples, flags, scores = _read_tables(rd)
    if req.retrain and req.detectors is not None:
        _check_methods(_scored(scores), req.detectors, baselines=req.baselines)
    if req.retrain:
        require_test_split(rd, manifest)
    previous = _previous_report(rd)  # read before this evaluation overwrites it
    needs_run = req.retrain or req.baselines
    ctx = load_context(rd, manifest, need_test=req.retrain) if needs_run else None
    found = _previous_baselines(previous, scores)
    if ctx is not None and req.baselines:
        found, scores = _run_baselines(ctx, req.folds)
    table = evaluation_table(scores, flags)
    timings = _timings(rd, manifest, samples, list(table["detector"]), req, ctx)
    if ctx is not None and req.retrain:
        section: RetrainResults | None = _retrain(ctx, scores, req)
    else:
        section = None if req.retrain else _previous_retrain(previous, scores)
    timings.train, timings.train_source = training_seconds(manifest, found, section)
    rows = detection_rows(table, timings, found)
    report = _assemble(rd, manifest, flags, ctx, rows)
    report.compute = compute_cost(rows, timings)
    report.baselines, report.retrain = found, section
    ratio = ratio_same_load(report)
    if ratio is not None:
        report.compute.cleanlab_over_best_gradient_compute_same_load = round(ratio, 2)
    _write(rd, report)
    return report


def _assemble(
    rd: RunDir,
    manifest: Manifest,
    flags: np.ndarray,
    ctx: RunContext | None,
    rows: list[DetectionRow],
) -> EvaluationReport:
    """The report's description of the run, the machine and the detection rows."""
    data, model = _data_and_model(manifest, flags)
    return EvaluationReport(
        created=utc_now(),
        run_dir=str(rd.path),
        data=data,
        model=model,
        machine=_machine(None if ctx is None else str(ctx.device)),
        run_steps_seconds={k: v.seconds for k, v in manifest.steps.items()},
        detection=rows,
        notes=[] if ctx is None else list(ctx.notes),
    )

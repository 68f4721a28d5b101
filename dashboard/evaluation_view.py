"""What the dashboard shows of ``ogad evaluate``'s report (``RUN_DIR/evaluation.json``). Torch-free.

The report is read with the typed schema :mod:`ogad_core.evaluation.schema` (never with
``ogad_core.evaluation.report``, which trains models for ``--retrain`` / ``--baselines``). For a
run whose noise is known (``samples.parquet`` has ``is_flipped``) :func:`load_evaluation_view`
returns the tables the Summary page draws:

* the detection table of every scored method (AUROC, AP, P@k%, recall at n_flipped, seconds),
  from the report, or computed now from ``scores.parquet`` when there is no readable report;
* the quality bar: the best gradient detector against the cleanlab baseline;
* the retraining tables (references, and method x trim % with "mean ± std [flipped removed]"
  cells, as ``format_report`` prints them);
* whether the report still matches the run (``stale`` and why).

Nothing here raises on a bad report: a missing, corrupt, outdated or newer ``evaluation.json``
becomes a note (``reason``) and, where possible, figures computed from the run itself.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.run_view import run_files_stamp
from ogad_core._internal import one_line
from ogad_core.errors import OgadError
from ogad_core.evaluation.schema import (
    AUROC_MARGIN,
    EVALUATION_JSON,
    ComputeCost,
    DetectionRow,
    EvaluationReport,
    ReportError,
    ReportRead,
    RetrainResults,
    mean_std,
    read_report,
)
from ogad_core.run.rundir import RunDir

__all__ = [
    "COLUMN_FORMATS",
    "INFO",
    "WARNING",
    "EvaluationView",
    "Verdict",
    "evaluate_hint",
    "evaluation_stamp",
    "live_rows",
    "load_evaluation_view",
]

#: report and live AUROC / AP may differ by the report's rounding (6 digits) only
_SAME = 2e-6
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")  # as dashboard.cards.md_escape

#: printf formats of the detection table's timing columns (for ``st.column_config``)
COLUMN_FORMATS: dict[str, str] = {"seconds": "%.2f", "total s": "%.1f"}
_METRIC_FORMAT = "%.4f"

INFO, WARNING = "info", "warning"


@dataclass(frozen=True)
class Verdict:
    """The one-line quality bar: best gradient detector vs cleanlab.

    Attributes:
        text: Markdown line (method names in backticks).
        ok: the best gradient detector's AUROC is within 0.01 of cleanlab's or better.
    """

    text: str
    ok: bool


@dataclass(frozen=True)
class EvaluationView:
    """The evaluation figures of one run with known noise, ready to draw.

    Attributes:
        source: ``"report"`` (figures from evaluation.json) or ``"live"`` (computed now from
            scores.parquet and samples.parquet: no report, or an unusable one).
        detection: one row per scored method, AUROC descending; columns ``method``, ``kind``
            (gradient / loss-based / baseline), ``AUROC``, ``AP``, ``P@1%`` ``P@5%``
            ``P@10%``, ``R@n_flipped``, then ``seconds`` / ``total s`` when the report timed
            the methods (float, NaN where unknown). Empty when nothing can be evaluated
            (``reason`` says why).
        column_formats: printf format of every numeric column of ``detection``.
        caption: Markdown line saying where the figures come from and on what data.
        verdict: the quality bar, when the figures include cleanlab and a gradient detector.
        created: the report's ``created`` (ISO 8601, UTC), None for live figures.
        references: retraining references (``reference``, ``removed``, ``test accuracy`` as
            "mean ± std"), None without retraining results.
        trims: method x trim % table (``method``, then one "trim k% (n removed)" column per
            k with "mean ± std [f flipped]" cells), None without retraining results.
        retrain_caption: how the retraining figures were made (accuracy, seeds, std).
        notes: further Markdown lines on how the figures were made (timings, baselines).
        stale: the figures shown may not match the run as it is now (or are not the report's).
        reason: why (or why nothing could be evaluated), with the command that refreshes it.
        level: how to show ``reason``: ``"info"`` or ``"warning"``.
    """

    source: str
    detection: pd.DataFrame
    column_formats: dict[str, str]
    caption: str
    verdict: Verdict | None = None
    created: str | None = None
    references: pd.DataFrame | None = None
    trims: pd.DataFrame | None = None
    retrain_caption: str | None = None
    notes: tuple[str, ...] = ()
    stale: bool = False
    reason: str | None = None
    level: str = INFO


@dataclass(frozen=True)
class _RunNow:
    """The run as it is now: its size, its noise and its detection figures computed live."""

    rd: RunDir
    n: int
    n_flipped: int
    data_line: str
    live: list[DetectionRow] | None
    live_problem: str | None


def _md(text: object) -> str:
    """Free text of the report with every Markdown-special character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def _code(name: object) -> str:
    """A method name as inline code."""
    return "`" + str(name).replace("`", "'") + "`"


def evaluation_stamp(run_dir: str | os.PathLike[str]) -> tuple[Any, ...]:
    """:func:`run_files_stamp` plus (name, mtime_ns, size) of evaluation.json: a cache key."""
    path = RunDir(run_dir).evaluation_path
    own: tuple[str, int | None, int | None]
    try:
        st = path.stat()
        own = (path.name, st.st_mtime_ns, st.st_size)
    except OSError:
        own = (path.name, None, None)
    return (*run_files_stamp(run_dir), own)


def evaluate_hint(run_dir: str | os.PathLike[str]) -> str:
    """The command that (re)writes the report, as Markdown."""
    return (
        f"run `ogad evaluate {shlex.quote(str(run_dir))}` (add --baselines --retrain for "
        "baselines and retraining)"
    )


# ---- tables ---------------------------------------------------------------------------------


def _floats(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _detection_frame(rows: list[DetectionRow]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The display table of detection rows (AUROC descending) and its column formats."""
    metrics: dict[str, list[float | None]] = {
        "AUROC": [r.auroc for r in rows],
        "AP": [r.average_precision for r in rows],
    }
    for percent in rows[0].precision_at() if rows else {}:
        metrics[f"P@{percent:g}%"] = [r.precision_at()[percent] for r in rows]
    metrics["R@n_flipped"] = [r.recall_at_n_flipped for r in rows]
    timing = {
        "seconds": [r.seconds for r in rows],
        "total s": [r.total_seconds for r in rows],
    }
    timing = {k: v for k, v in timing.items() if any(x is not None for x in v)}
    frame = pd.DataFrame(
        {
            "method": [r.detector for r in rows],
            "kind": [r.kind for r in rows],
            **{k: _floats(v) for k, v in metrics.items()},
            **{k: _floats(v) for k, v in timing.items()},
        }
    )
    frame = frame.sort_values("AUROC", ascending=False, kind="stable").reset_index(drop=True)
    formats = {label: _METRIC_FORMAT for label in metrics}
    formats.update({label: COLUMN_FORMATS[label] for label in timing})
    return frame, formats


def _verdict(rows: list[DetectionRow], compute: ComputeCost | None) -> Verdict | None:
    """Best gradient detector vs cleanlab (the report's figures when it has them)."""
    grad = [r for r in rows if r.kind == "gradient"]
    cl = next((r for r in rows if r.detector == "cleanlab"), None)
    if not grad or cl is None:
        return None
    best = max(grad, key=lambda r: r.auroc)
    name, auroc, cl_auroc, ok = best.detector, best.auroc, cl.auroc, None
    gap = auroc - cl_auroc
    if compute is not None and compute.has_verdict:
        name = compute.best_gradient_detector or name
        auroc = compute.best_gradient_auroc or auroc
        cl_auroc = compute.cleanlab_auroc or cl_auroc
        gap = (
            auroc - cl_auroc
            if compute.auroc_gap_vs_cleanlab is None
            else compute.auroc_gap_vs_cleanlab
        )
        ok = compute.within_0_01_of_cleanlab_or_better
    ok = gap >= -AUROC_MARGIN if ok is None else ok
    text = (
        f"Best gradient detector {_code(name)}: AUROC {auroc:.4f} vs cleanlab {cl_auroc:.4f} "
        f"(gap {gap:+.4f}): "
        + ("within 0.01 of cleanlab or better" if ok else "worse than cleanlab by more than 0.01")
    )
    return Verdict(text=text + _ratio_text(compute), ok=ok)


def _ratio_text(compute: ComputeCost | None) -> str:
    """How much more compute cleanlab needs ('' when the report did not time it)."""
    if compute is None:
        return ""
    ratio = compute.cleanlab_over_best_gradient_compute
    same = compute.cleanlab_over_best_gradient_compute_same_load
    if ratio:
        text = f"; cleanlab needs {ratio:.1f}x its compute"
        if same and abs(same - ratio) > 0.05:
            text += f" ({same:.1f}x with both timed under the same load)"
        return text
    if same:
        return f"; cleanlab needs {same:.1f}x its compute (timed under the same load)"
    return ""


def _trims_table(rt: RetrainResults) -> pd.DataFrame:
    """Method x trim % with "mean ± std [f flipped]" cells."""
    names = rt.method_order()
    table: dict[str, list[str]] = {"method": names}
    for k in rt.trim_percents:
        sized = next((r for r in rt.rows if r.trim_percent == k), None)
        header = f"trim {k:g}%" + (f" ({sized.n_trimmed:g} removed)" if sized else "")
        cells = []
        for name in names:
            r = rt.row(name, k)
            flipped = (
                ""
                if r is None or r.flipped_trimmed is None
                else f" [{r.flipped_trimmed:g} flipped]"
            )
            cells.append("-" if r is None else mean_std(r) + flipped)
        table[header] = cells
    return pd.DataFrame(table)


def _retrain_caption(rt: RetrainResults) -> str:
    """How the retraining figures were made, one Markdown line."""
    seeds = _md(", ".join(str(s) for s in rt.seeds))
    first = (
        f"Retraining: {_md(rt.accuracy_is)}"
        + (f" ({_md(rt.n_test)} held-out samples)" if rt.n_test else "")
        + f"; mean ± std over {len(rt.seeds) or '?'} seed(s) ({seeds})"
        + (f", std = {_md(rt.std_is)}" if rt.std_is else "")
    )
    parts = [first]
    if rt.models_trained:
        each = f", {rt.seconds_per_model:.1f} s each" if rt.seconds_per_model else ""
        parts.append(f"{rt.models_trained} models trained{each}")
    parts.append("[f flipped] = flipped samples among the removed (mean over seeds)")
    if rt.from_report_created:
        parts.append(f"retrained for the report of {_when(rt.from_report_created)}")
    if rt.no_trim_reproduces_run is False:
        parts.append(
            "note: retraining without trimming did not reproduce the run's test accuracy exactly"
        )
    return " · ".join(parts)


def _retrain_tables(rt: RetrainResults) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(references, method x trim table, caption) of the report's ``retrain`` section."""
    references = pd.DataFrame(
        {
            "reference": [r.label or r.method for r in rt.references],
            "removed": [r.n_trimmed for r in rt.references],
            "test accuracy": [mean_std(r) for r in rt.references],
        }
    )
    return references, _trims_table(rt), _retrain_caption(rt)


def _when(created: str) -> str:
    """``2026-11-29T02:32:58+00:00`` -> ``2026-11-29 02:32:58 UTC`` (other text escaped)."""
    m = re.match(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d(?::\d\d)?)(?:\.\d+)?(\+00:00|Z)?$", created)
    if not m:
        return _md(created)
    return f"{m.group(1)} {m.group(2)}" + (" UTC" if m.group(3) else "")


def _data_line(n: int, n_flipped: int, noise: Any) -> str:
    text = f"{n:,} samples, {n_flipped:,} labels flipped"
    if isinstance(noise, dict):
        bits = [
            _md(noise["kind"]) + " noise" if noise.get("kind") else None,
            f"rate {noise['rate']:g}" if isinstance(noise.get("rate"), int | float) else None,
        ]
        found = [b for b in bits if b]
        if found:
            text += f" ({', '.join(found)})"
    return text


# ---- notes ----------------------------------------------------------------------------------


def _compute_notes(c: ComputeCost, timed: bool) -> list[str]:
    out = []
    if timed and c.seconds_is:
        out.append(f"seconds = {_md(c.seconds_is)}")
    if timed and c.total_seconds_is:
        out.append(f"total s = {_md(c.total_seconds_is)}")
    if c.train_seconds is not None:
        line = f"training {c.train_seconds:.1f} s ({_md(c.train_seconds_source or '?')})"
        if c.gradient_seconds is not None:
            line += (
                f"; gradients {c.gradient_seconds:.1f} s per checkpoint "
                f"({_md(c.gradient_seconds_source or '?')})"
            )
        out.append(line)
    return out


def _baseline_notes(report: EvaluationReport) -> list[str]:
    out: list[str] = []
    for name, info in report.baselines.items() if report.baselines else []:
        if info.skipped:
            out.append(f"{_code(name)}: skipped ({_md(info.skipped)})")
            continue
        if info.method:
            out.append(f"{_code(name)}: {_md(info.method)}")
        cl = report.baselines.cleanlab if report.baselines else None
        if info is cl and cl is not None and cl.n_label_issues is not None:
            prec, rec = cl.label_issues_precision, cl.label_issues_recall
            out.append(
                f"cleanlab's `find_label_issues` flags {cl.n_label_issues} samples"
                + (f" (precision {prec:.4f}" if prec is not None else " (precision -")
                + (f", recall {rec:.4f})" if rec is not None else ", recall -)")
            )
        out += [f"{_code(name)}: {_md(note)}" for note in info.notes]
    return out


def _notes(read: ReportRead, timed: bool) -> tuple[str, ...]:
    """How the report's timings (``timed``: the table shows some), baselines and model were
    made, and which of its parts could not be read; one Markdown line each."""
    report = read.report
    out = [f"part of {EVALUATION_JSON} is unreadable: {_md(p)}" for p in read.problems]
    if report.compute is not None:
        out += _compute_notes(report.compute, timed)
    out += _baseline_notes(report)
    model = report.model
    if model is not None and model.test_accuracy is not None:
        out.append(
            f"the run's model: test accuracy {model.test_accuracy:.4f}"
            + (f", {_md(model.recipe)}" if model.recipe else "")
        )
    out += [_md(note) for note in report.notes]
    return tuple(out)


# ---- the run as it is now -------------------------------------------------------------------


def live_rows(scores: pd.DataFrame, samples: pd.DataFrame) -> list[DetectionRow]:
    """Detection rows computed now (``metrics.evaluation_table``), as the report's."""
    from ogad_core.scoring.metrics import evaluation_table

    table = evaluation_table(scores, samples[["sample_id", "is_flipped"]])
    return [
        DetectionRow.from_metrics(str(rec.pop("detector")), rec)
        for rec in table.to_dict(orient="records")
    ]


def _size_mismatch(report: EvaluationReport, run: _RunNow) -> list[str]:
    data = report.data
    if data is None:
        return ["its data section is unreadable"]
    if data.n_train == run.n and data.n_flipped == run.n_flipped:
        return []
    return [
        f"it was made for {data.n_train} samples / {data.n_flipped} flipped, "
        f"the run now has {run.n} / {run.n_flipped}"
    ]


def _detector_mismatch(report: EvaluationReport, live: list[DetectionRow]) -> list[str]:
    have = [r.detector for r in report.detection]
    now = [r.detector for r in live]
    out = []
    new = [d for d in now if d not in have]
    gone = [d for d in have if d not in now]
    if new:
        out.append("scores.parquet has detectors the report lacks: " + ", ".join(map(_code, new)))
    if gone:
        out.append(
            "the report lists detectors scores.parquet no longer has: "
            + ", ".join(map(_code, gone))
        )
    return out


def _changed_scores(report: EvaluationReport, live: list[DetectionRow]) -> list[str]:
    by = {r.detector: r for r in live}
    changed = []
    for r in report.detection:
        now = by.get(r.detector)
        pairs = (
            []
            if now is None
            else [(r.auroc, now.auroc), (r.average_precision, now.average_precision)]
        )
        if any(a is not None and b is not None and abs(a - b) > _SAME for a, b in pairs):
            changed.append(r.detector)
    if not changed:
        return []
    return [
        "the scores of "
        + ", ".join(map(_code, changed))
        + " changed since (their AUROC / AP differ now)"
    ]


def _mismatches(report: EvaluationReport, run: _RunNow, path: Path) -> list[str]:
    """Why the report's figures no longer describe the run ([] when they still do)."""
    out = _size_mismatch(report, run)
    if run.live is None:
        if _newer(run.rd.scores_path, path):
            out.append(f"scores.parquet is newer than {EVALUATION_JSON}")
        return out
    out += _detector_mismatch(report, run.live)
    return out or _changed_scores(report, run.live)


def _newer(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_mtime_ns > b.stat().st_mtime_ns
    except OSError:
        return False


def _noise(rd: RunDir) -> Any:
    """The manifest's ``data.noise`` (None when the manifest cannot be read)."""
    try:
        return rd.read_manifest().get("data", {}).get("noise")
    except (OgadError, AttributeError):
        return None


def _run_now(rd: RunDir) -> _RunNow | None:
    """The run's size, noise and live figures; None without known noise or samples table."""
    try:
        samples = rd.read_samples()
    except OgadError:
        return None
    if "is_flipped" not in samples.columns:
        return None
    n_flipped = int(samples["is_flipped"].fillna(False).astype(bool).sum())
    live, problem = None, None
    try:
        live = live_rows(rd.read_scores(), samples)
    except OgadError as err:  # no scores yet, no sample flipped, mismatched tables
        problem = one_line(err)
    data_line = _data_line(len(samples), n_flipped, _noise(rd))
    return _RunNow(rd, len(samples), n_flipped, data_line, live, problem)


# ---- the views ------------------------------------------------------------------------------


def _live_view(run: _RunNow, problem: ReportError | None) -> EvaluationView:
    """Figures computed now: no report, or an unusable one (``problem``)."""
    if problem is not None:
        state = "stale" if problem.stale else "unusable"
        reason, level = f"{EVALUATION_JSON} is {state}: {_md(problem)}. ", WARNING
    else:
        reason, level = f"No {EVALUATION_JSON} yet. ", INFO
    if run.live is None:
        reason += f"Nothing to evaluate: {_md(run.live_problem)}."
        frame, formats = pd.DataFrame(), dict[str, str]()
    else:
        reason += "The figures below are computed now from scores.parquet (no timings)."
        frame, formats = _detection_frame(run.live)
    return EvaluationView(
        source="live",
        detection=frame,
        column_formats=formats,
        caption=f"Computed now from scores.parquet and samples.parquet · {run.data_line}",
        verdict=_verdict(run.live or [], None),
        stale=True,
        reason=f"{reason} For the full report {evaluate_hint(run.rd.path)}.",
        level=level,
    )


def _cleanlab_hint(report: EvaluationReport, rd: RunDir) -> tuple[str, ...]:
    if report.row("cleanlab") is not None:
        return ()
    return (
        f"No cleanlab baseline in this report: `ogad evaluate {shlex.quote(str(rd.path))} "
        "--baselines` adds it (and TracIn) for the quality bar.",
    )


def _report_view(run: _RunNow, read: ReportRead, path: Path) -> EvaluationView:
    """The figures a readable report holds, checked against the run as it is now."""
    report = read.report
    frame, formats = _detection_frame(report.detection)
    references = trims = caption = None
    if report.retrain is not None:
        references, trims, caption = _retrain_tables(report.retrain)
    reasons = _mismatches(report, run, path)
    created = report.created
    written = f" (written {_when(created)})" if created else ""
    reason = None
    if reasons:
        reason = (
            f"{EVALUATION_JSON}{written} no longer matches this run: {'; '.join(reasons)}. "
            f"The figures below are the report's; to refresh them {evaluate_hint(run.rd.path)}."
        )
    return EvaluationView(
        source="report",
        detection=frame,
        column_formats=formats,
        caption=f"From `{EVALUATION_JSON}`, written by `ogad evaluate`"
        + (f" on {_when(created)}" if created else "")
        + f" · {run.data_line}",
        verdict=_verdict(report.detection, report.compute),
        created=created,
        references=references,
        trims=trims,
        retrain_caption=caption,
        notes=_notes(read, timed=any(c in frame.columns for c in COLUMN_FORMATS))
        + _cleanlab_hint(report, run.rd),
        stale=bool(reasons),
        reason=reason,
        level=WARNING if reasons else INFO,
    )


def load_evaluation_view(run_dir: str | os.PathLike[str]) -> EvaluationView | None:
    """The evaluation figures of a run, or None when its noise is not known (no is_flipped).

    Never raises on a missing, corrupt, outdated or newer evaluation.json: figures are computed
    from scores.parquet then (``source="live"``) and ``reason`` says what to run.

    Args:
        run_dir: a run directory (``RunDir`` layout).
    Returns:
        an :class:`EvaluationView`, or None (no known noise, or no readable samples table).
    """
    rd = RunDir(run_dir)
    run = _run_now(rd)
    if run is None:
        return None
    path = rd.evaluation_path
    if not path.is_file():
        return _live_view(run, None)
    try:
        read = read_report(path)
    except ReportError as err:
        return _live_view(run, err)
    return _report_view(run, read, path)

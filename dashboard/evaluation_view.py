"""What the dashboard shows of ``ogad evaluate``'s report (``RUN_DIR/evaluation.json``). Torch-free.

The report is read with :mod:`json` only: this module never imports ``ogad_core.evaluation.report``
(which trains models for ``--retrain`` / ``--baselines``). For a run whose noise is known
(``samples.parquet`` has ``is_flipped``) :func:`load_evaluation_view` returns the tables the
Summary page draws:

* the detection table of every scored method (AUROC, AP, P@k%, recall at n_flipped, seconds),
  from the report, or computed now from ``scores.parquet`` when there is no readable report;
* the quality bar: the best gradient detector against the cleanlab baseline;
* the retraining tables (references, and method x trim % with "mean ± std [flipped removed]"
  cells, as ``format_report`` prints them);
* whether the report still matches the run (``stale`` and why).

Nothing here raises on a bad report: a missing, corrupt or outdated ``evaluation.json`` becomes
a note (``reason``) and, where possible, figures computed from the run itself.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.queue import run_files_stamp
from ogad_core.errors import OgadError
from ogad_core.run.rundir import RunDir

__all__ = [
    "COLUMN_FORMATS",
    "EVALUATION_JSON",
    "INFO",
    "WARNING",
    "EvaluationView",
    "Verdict",
    "evaluate_hint",
    "evaluation_stamp",
    "load_evaluation_view",
]

#: the report ``ogad evaluate`` writes
EVALUATION_JSON = "evaluation.json"
#: methods that do not score outliers of the gradient embeddings
NON_GRADIENT = frozenset({"loss", "selfconf", "cleanlab", "tracin"})
BASELINES = frozenset({"cleanlab", "tracin"})
#: the quality bar: the best gradient detector's AUROC at most this far below cleanlab's
AUROC_MARGIN = 0.01
#: report and live AUROC / AP may differ by the report's rounding (6 digits) only
_SAME = 2e-6
_PRECISION_RE = re.compile(r"^precision_at_(\d+(?:\.\d+)?)pct$")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")  # as dashboard.cards.md_escape

#: printf formats of the detection table's numeric columns (for ``st.column_config``)
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
            scores.parquet and samples.parquet: no report, or an unreadable one).
        detection: one row per scored method, AUROC descending; columns ``method``, ``kind``
            (gradient / loss-based / baseline), ``AUROC``, ``AP``, ``P@1%`` ... (one per
            precision@k of the report), ``R@n_flipped``, then ``seconds`` / ``total s`` when
            the report timed the methods (float, NaN where unknown). Empty when nothing can be
            evaluated (``reason`` says why).
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


def _md(text: object) -> str:
    """Free text of the report with every Markdown-special character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def _code(name: object) -> str:
    """A method name as inline code."""
    return "`" + str(name).replace("`", "'") + "`"


class _BadReport(ValueError):
    """evaluation.json does not have the layout ``ogad evaluate`` writes."""


def evaluation_stamp(run_dir: str | os.PathLike[str]) -> tuple:
    """:func:`run_files_stamp` plus (name, mtime_ns, size) of evaluation.json: a cache key."""
    path = Path(run_dir) / EVALUATION_JSON
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


# ---- reading the report ---------------------------------------------------------------------


def _number(value: Any, what: str) -> float | None:
    """A JSON number as float (None for null / non-finite); _BadReport for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadReport(f"{what} is not a number")
    value = float(value)
    return value if math.isfinite(value) else None


def _section(report: dict[str, Any], key: str) -> dict[str, Any]:
    value = report.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _BadReport(f"'{key}' is not an object")
    return value


def _precision_keys(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """[(key, column label)] of the precision@k% metrics in the rows, by increasing k."""
    found: dict[str, float] = {}
    for row in rows:
        for key in row:
            m = _PRECISION_RE.match(key)
            if m:
                found[key] = float(m.group(1))
    return [(k, f"P@{p:g}%") for k, p in sorted(found.items(), key=lambda kv: kv[1])]


def _kind(name: str) -> str:
    if name not in NON_GRADIENT:
        return "gradient"
    return "baseline" if name in BASELINES else "loss-based"


def _report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's detection rows, checked: detector (str), kind, numbers or null."""
    rows = report.get("detection")
    if not isinstance(rows, list) or not rows:
        raise _BadReport("it lists no detection results")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("detector"), str):
            raise _BadReport(f"detection row {i} names no detector")
        name = row["detector"]
        clean: dict[str, Any] = {"detector": name, "kind": str(row.get("kind") or _kind(name))}
        for key, value in row.items():
            if key not in ("detector", "kind"):
                clean[key] = _number(value, f"{name}'s {key}")
        if clean.get("auroc") is None:
            raise _BadReport(f"{name} has no AUROC")
        out.append(clean)
    return out


def _detection_frame(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The display table of detection rows (AUROC descending) and its column formats."""
    columns = [
        ("auroc", "AUROC"),
        ("average_precision", "AP"),
        *_precision_keys(rows),
        ("recall_at_n_flipped", "R@n_flipped"),
    ]
    timing = [
        (k, label)
        for k, label in (("seconds", "seconds"), ("total_seconds", "total s"))
        if any(r.get(k) is not None for r in rows)
    ]
    data: dict[str, list[Any]] = {
        "method": [r["detector"] for r in rows],
        "kind": [r["kind"] for r in rows],
    }
    for key, label in [*columns, *timing]:
        data[label] = [r.get(key) for r in rows]
    frame = pd.DataFrame(data)
    for _, label in [*columns, *timing]:
        frame[label] = pd.to_numeric(frame[label], errors="coerce").astype("float64")
    frame = frame.sort_values("AUROC", ascending=False, kind="stable").reset_index(drop=True)
    formats = {label: _METRIC_FORMAT for _, label in columns}
    formats.update({label: COLUMN_FORMATS[label] for _, label in timing})
    return frame, formats


def _verdict(rows: list[dict[str, Any]], compute: dict[str, Any]) -> Verdict | None:
    """Best gradient detector vs cleanlab (the report's figures when it has them)."""
    grad = [r for r in rows if r["kind"] == "gradient" and r.get("auroc") is not None]
    cl = next((r for r in rows if r["detector"] == "cleanlab"), None)
    if not grad or cl is None or cl.get("auroc") is None:
        return None
    best = max(grad, key=lambda r: r["auroc"])
    name, auroc, cl_auroc = best["detector"], float(best["auroc"]), float(cl["auroc"])
    gap = auroc - cl_auroc
    ok = gap >= -AUROC_MARGIN
    if isinstance(compute.get("best_gradient_detector"), str) and "cleanlab_auroc" in compute:
        name = compute["best_gradient_detector"]
        auroc = _number(compute.get("best_gradient_auroc"), "best_gradient_auroc") or auroc
        cl_auroc = _number(compute.get("cleanlab_auroc"), "cleanlab_auroc") or cl_auroc
        gap = _number(compute.get("auroc_gap_vs_cleanlab"), "auroc_gap_vs_cleanlab")
        gap = auroc - cl_auroc if gap is None else gap
        within = compute.get("within_0_01_of_cleanlab_or_better")
        ok = bool(within) if isinstance(within, bool) else gap >= -AUROC_MARGIN
    text = (
        f"Best gradient detector {_code(name)}: AUROC {auroc:.4f} vs cleanlab {cl_auroc:.4f} "
        f"(gap {gap:+.4f}): "
        + ("within 0.01 of cleanlab or better" if ok else "worse than cleanlab by more than 0.01")
    )
    ratio = _number(compute.get("cleanlab_over_best_gradient_compute"), "compute ratio")
    same = _number(
        compute.get("cleanlab_over_best_gradient_compute_same_load"), "compute ratio (same load)"
    )
    if ratio:
        text += f"; cleanlab needs {ratio:.1f}x its compute"
        if same and abs(same - ratio) > 0.05:
            text += f" ({same:.1f}x with both timed under the same load)"
    elif same:
        text += f"; cleanlab needs {same:.1f}x its compute (timed under the same load)"
    return Verdict(text=text, ok=ok)


def _mean_std(entry: dict[str, Any], what: str) -> str:
    mean = _number(entry.get("mean"), f"{what} mean")
    if mean is None:
        return "-"
    std = _number(entry.get("std"), f"{what} std")
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def _retrain_tables(rt: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(references, method x trim table, caption) of the report's ``retrain`` section."""
    refs = rt.get("references")
    rows = rt.get("rows")
    trims = rt.get("trim_percents")
    if not isinstance(refs, list) or not isinstance(rows, list) or not isinstance(trims, list):
        raise _BadReport("its retrain section lacks references, rows or trim_percents")
    if not all(isinstance(r, dict) for r in [*refs, *rows]):
        raise _BadReport("its retrain section has malformed rows")
    references = pd.DataFrame(
        {
            "reference": [str(r.get("label") or r.get("method")) for r in refs],
            "removed": [int(_number(r.get("n_trimmed"), "n_trimmed") or 0) for r in refs],
            "test accuracy": [_mean_std(r, str(r.get("method"))) for r in refs],
        }
    )
    ks = [_number(k, "trim_percents") for k in trims]
    by = {(str(r.get("method")), _number(r.get("trim_percent"), "trim_percent")): r for r in rows}
    methods = rt.get("methods")
    names = ["random", *(methods if isinstance(methods, list) else [])]
    for r in rows:  # methods the list leaves out (an older report): keep every row
        if str(r.get("method")) not in names:
            names.append(str(r.get("method")))
    table: dict[str, list[str]] = {"method": [str(n) for n in names]}
    for k in ks:
        sized = next((r for (m, kk), r in by.items() if kk == k), {})
        n = _number(sized.get("n_trimmed"), "n_trimmed")
        header = f"trim {k:g}%" + (f" ({n:g} removed)" if n is not None else "")
        cells = []
        for name in names:
            r = by.get((str(name), k))
            if r is None:
                cells.append("-")
                continue
            flipped = _number(r.get("flipped_trimmed"), "flipped_trimmed")
            cells.append(
                _mean_std(r, str(name)) + (f" [{flipped:g} flipped]" if flipped is not None else "")
            )
        table[header] = cells
    seeds = rt.get("seeds")
    seed_text = _md(", ".join(str(s) for s in seeds)) if isinstance(seeds, list) else "?"
    n_seeds = len(seeds) if isinstance(seeds, list) else None
    accuracy_is = _md(rt.get("accuracy_is") or "test accuracy")
    n_test = rt.get("n_test")
    parts = [
        f"Retraining: {accuracy_is}"
        + (f" ({_md(n_test)} held-out samples)" if n_test else "")
        + f"; mean ± std over {n_seeds or '?'} seed(s) ({seed_text})"
        + (f", std = {_md(rt['std_is'])}" if rt.get("std_is") else ""),
    ]
    models, per_model = rt.get("models_trained"), _number(rt.get("seconds_per_model"), "s/model")
    if models:
        parts.append(
            f"{_md(models)} models trained" + (f", {per_model:.1f} s each" if per_model else "")
        )
    parts.append("[f flipped] = flipped samples among the removed (mean over seeds)")
    if rt.get("from_report_created"):
        parts.append(f"retrained for the report of {_when(rt['from_report_created'])}")
    if rt.get("no_trim_reproduces_run") is False:
        parts.append(
            "note: retraining without trimming did not reproduce the run's test accuracy exactly"
        )
    return references, pd.DataFrame(table), " · ".join(parts)


def _when(created: Any) -> str:
    """``2026-11-29T02:32:58+00:00`` -> ``2026-11-29 02:32:58 UTC`` (other text escaped)."""
    text = str(created)
    m = re.match(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d(?::\d\d)?)(?:\.\d+)?(\+00:00|Z)?$", text)
    if not m:
        return _md(text)
    return f"{m.group(1)} {m.group(2)}" + (" UTC" if m.group(3) else "")


def _data_line(n: int, n_flipped: int, noise: Any) -> str:
    text = f"{n:,} samples, {n_flipped:,} labels flipped"
    if isinstance(noise, dict):
        bits = [
            _md(noise["kind"]) + " noise" if noise.get("kind") else None,
            f"rate {noise['rate']:g}" if isinstance(noise.get("rate"), int | float) else None,
        ]
        bits = [b for b in bits if b]
        if bits:
            text += f" ({', '.join(bits)})"
    return text


def _notes(report: dict[str, Any], timed: bool) -> tuple[str, ...]:
    """How the report's timings (``timed``: the table shows some) and baselines were made,
    one Markdown line each."""
    out = []
    c = _section(report, "compute")
    if timed and c.get("seconds_is"):
        out.append(f"seconds = {_md(c['seconds_is'])}")
    if timed and c.get("total_seconds_is"):
        out.append(f"total s = {_md(c['total_seconds_is'])}")
    train = _number(c.get("train_seconds"), "train_seconds")
    if train is not None:
        grad = _number(c.get("gradient_seconds"), "gradient_seconds")
        line = f"training {train:.1f} s ({_md(c.get('train_seconds_source') or '?')})"
        if grad is not None:
            line += (
                f"; gradients {grad:.1f} s per checkpoint "
                f"({_md(c.get('gradient_seconds_source') or '?')})"
            )
        out.append(line)
    for name, info in _section(report, "baselines").items():
        if not isinstance(info, dict):
            continue
        if info.get("skipped"):
            out.append(f"{_code(name)}: skipped ({_md(info['skipped'])})")
            continue
        if info.get("method"):
            out.append(f"{_code(name)}: {_md(info['method'])}")
        if name == "cleanlab" and info.get("n_label_issues") is not None:
            prec = _number(info.get("label_issues_precision"), "precision")
            rec = _number(info.get("label_issues_recall"), "recall")
            out.append(
                f"cleanlab's `find_label_issues` flags {info['n_label_issues']} samples"
                + (f" (precision {prec:.4f}" if prec is not None else " (precision -")
                + (f", recall {rec:.4f})" if rec is not None else ", recall -)")
            )
        notes = info.get("notes")
        for note in notes if isinstance(notes, list) else []:
            out.append(f"{_code(name)}: {_md(note)}")
    model = _section(report, "model")
    acc = _number(model.get("test_accuracy"), "test_accuracy")
    if acc is not None:
        out.append(
            f"the run's model: test accuracy {acc:.4f}"
            + (f", {_md(model['recipe'])}" if model.get("recipe") else "")
        )
    return tuple(out)


# ---- the run as it is now -------------------------------------------------------------------


def _live_rows(scores: pd.DataFrame, samples: pd.DataFrame) -> list[dict[str, Any]]:
    """Detection rows computed now (``metrics.evaluation_table``), shaped as the report's."""
    from ogad_core.scoring.metrics import evaluation_table

    table = evaluation_table(scores, samples[["sample_id", "is_flipped"]])
    rows = []
    for rec in table.to_dict(orient="records"):
        name = str(rec.pop("detector"))
        rows.append(
            {"detector": name, "kind": _kind(name), **{k: float(v) for k, v in rec.items()}}
        )
    return rows


def _mismatches(
    report: dict[str, Any],
    rows: list[dict[str, Any]],
    n: int,
    n_flipped: int,
    live: list[dict[str, Any]] | None,
) -> list[str]:
    """Why the report's figures no longer describe the run ([] when they still do)."""
    out = []
    data = _section(report, "data")
    r_n = _number(data.get("n_train"), "n_train")
    r_f = _number(data.get("n_flipped"), "n_flipped")
    if (r_n is not None and int(r_n) != n) or (r_f is not None and int(r_f) != n_flipped):
        out.append(
            f"it was made for {r_n:g} samples / {r_f:g} flipped, the run now has {n} / {n_flipped}"
            if r_n is not None and r_f is not None
            else "it was made for other samples"
        )
    if live is None:
        return out
    have = [r["detector"] for r in rows]
    now = [r["detector"] for r in live]
    new = [d for d in now if d not in have]
    gone = [d for d in have if d not in now]
    if new:
        out.append(
            "scores.parquet has detectors the report lacks: " + ", ".join(_code(d) for d in new)
        )
    if gone:
        out.append(
            "the report lists detectors scores.parquet no longer has: "
            + ", ".join(_code(d) for d in gone)
        )
    if not out:
        by = {r["detector"]: r for r in live}
        changed = [
            r["detector"]
            for r in rows
            if r["detector"] in by
            and any(
                r.get(k) is not None and abs(float(r[k]) - by[r["detector"]][k]) > _SAME
                for k in ("auroc", "average_precision")
            )
        ]
        if changed:
            out.append(
                "the scores of "
                + ", ".join(_code(d) for d in changed)
                + " changed since (their AUROC / AP differ now)"
            )
    return out


def _newer(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_mtime_ns > b.stat().st_mtime_ns
    except OSError:
        return False


def load_evaluation_view(run_dir: str | os.PathLike[str]) -> EvaluationView | None:
    """The evaluation figures of a run, or None when its noise is not known (no is_flipped).

    Never raises on a missing, corrupt or outdated evaluation.json: figures are computed from
    scores.parquet then (``source="live"``) and ``reason`` says what to run.

    Args:
        run_dir: a run directory (``RunDir`` layout).
    Returns:
        an :class:`EvaluationView`, or None (no known noise, or no readable samples table).
    """
    rd = RunDir(run_dir)
    try:
        samples = rd.read_samples()
    except OgadError:
        return None
    if "is_flipped" not in samples.columns:
        return None
    hint = evaluate_hint(rd.path)
    n = len(samples)
    flags = samples["is_flipped"].fillna(False).astype(bool)
    n_flipped = int(flags.sum())
    data_line = _data_line(n, n_flipped, _noise(rd))

    live: list[dict[str, Any]] | None = None
    live_problem = None
    try:
        live = _live_rows(rd.read_scores(), samples)
    except OgadError as err:  # no scores yet, no sample flipped, mismatched tables
        live_problem = str(err).splitlines()[0]

    path = rd.path / EVALUATION_JSON
    report: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    problem = None
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise _BadReport("it is not a JSON object")
            report = raw
            rows = _report_rows(report)
        except (OSError, UnicodeDecodeError) as err:
            problem = f"it cannot be read ({getattr(err, 'strerror', None) or err})"
        except json.JSONDecodeError as err:
            problem = f"it is not valid JSON (line {err.lineno}: {err.msg})"
        except _BadReport as err:
            problem = str(err)
        if problem is not None:
            report = None

    if report is None:
        if path.is_file():
            reason, level = f"{EVALUATION_JSON} is unusable: {_md(problem)}. ", WARNING
        else:
            reason, level = f"No {EVALUATION_JSON} yet. ", INFO
        if live is None:
            reason += f"Nothing to evaluate: {_md(live_problem)}."
            frame, formats = pd.DataFrame(), {}
        else:
            reason += "The figures below are computed now from scores.parquet (no timings)."
            frame, formats = _detection_frame(live)
        return EvaluationView(
            source="live",
            detection=frame,
            column_formats=formats,
            caption=f"Computed now from scores.parquet and samples.parquet · {data_line}",
            verdict=_verdict(live or [], {}),
            stale=True,
            reason=f"{reason} For the full report {hint}.",
            level=level,
        )

    # a readable report: the figures it holds, checked against the run as it is now
    try:
        frame, formats = _detection_frame(rows)
        verdict = _verdict(rows, _section(report, "compute"))
        notes = _notes(report, timed=any(c in frame.columns for c in COLUMN_FORMATS))
    except (_BadReport, TypeError, ValueError, KeyError) as err:  # keep the table
        why = str(err) if isinstance(err, _BadReport) else "unexpected values"
        frame, formats = _detection_frame(rows)
        verdict, notes = None, (f"part of {EVALUATION_JSON} is unreadable: {_md(why)}",)
    references = trims = retrain_caption = None
    rt = report.get("retrain")
    if isinstance(rt, dict):
        try:
            references, trims, retrain_caption = _retrain_tables(rt)
        except (_BadReport, TypeError, ValueError, KeyError) as err:
            notes = (
                *notes,
                f"the retraining results in {EVALUATION_JSON} are unreadable: {_md(err)}",
            )
    elif rt is not None:
        notes = (*notes, f"the retraining results in {EVALUATION_JSON} are unreadable")

    try:
        reasons = _mismatches(report, rows, n, n_flipped, live)
    except (_BadReport, TypeError, ValueError) as err:
        reasons = [f"its data section is unreadable ({_md(err)})"]
    if live is None and _newer(rd.scores_path, path):
        reasons.append(f"scores.parquet is newer than {EVALUATION_JSON}")
    created = report.get("created") if isinstance(report.get("created"), str) else None
    caption = (
        f"From `{EVALUATION_JSON}`, written by `ogad evaluate`"
        + (f" on {_when(created)}" if created else "")
        + f" · {data_line}"
    )
    if verdict is None and not any(r["detector"] == "cleanlab" for r in rows):
        notes = (
            *notes,
            "No cleanlab baseline in this report: `ogad evaluate "
            f"{shlex.quote(str(rd.path))} --baselines` adds it (and TracIn) for the "
            "quality bar.",
        )
    stale = bool(reasons)
    reason = None
    if stale:
        reason = (
            f"{EVALUATION_JSON}"
            + (f" (written {_when(created)})" if created else "")
            + " no longer matches this run: "
            + "; ".join(reasons)
            + f". The figures below are the report's; to refresh them {hint}."
        )
    return EvaluationView(
        source="report",
        detection=frame,
        column_formats=formats,
        caption=caption,
        verdict=verdict,
        created=created,
        references=references,
        trims=trims,
        retrain_caption=retrain_caption,
        notes=notes,
        stale=stale,
        reason=reason,
        level=WARNING if stale else INFO,
    )


def _noise(rd: RunDir) -> Any:
    """The manifest's ``data.noise`` (None when the manifest cannot be read)."""
    try:
        return rd.read_manifest().get("data", {}).get("noise")
    except (OgadError, AttributeError):
        return None

"""The text tables ``ogad evaluate`` prints for an :class:`EvaluationReport`. Torch-free."""

from __future__ import annotations

from ogad_core.evaluation.schema import (
    Baselines,
    ComputeCost,
    DetectionRow,
    EvaluationReport,
    RetrainResults,
    mean_std,
)

__all__ = ["format_report", "text_table"]

DETECTION_HEADERS = [
    "method",
    "AUROC",
    "AP",
    "P@1%",
    "P@5%",
    "P@10%",
    "R@n_flipped",
    "seconds",
    "total s",
]


def _fmt(value: float | int | str | None, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _detection_cells(r: DetectionRow) -> list[str]:
    return [
        r.detector,
        _fmt(r.auroc),
        _fmt(r.average_precision),
        _fmt(r.precision_at_1pct),
        _fmt(r.precision_at_5pct),
        _fmt(r.precision_at_10pct),
        _fmt(r.recall_at_n_flipped),
        _fmt(r.seconds, ".2f"),
        _fmt(r.total_seconds, ".1f"),
    ]


def _cost_lines(c: ComputeCost) -> list[str]:
    out = []
    if c.train_seconds is not None:
        out.append(
            f"(training {c.train_seconds:.1f} s: {c.train_seconds_source}; "
            f"gradients {_fmt(c.gradient_seconds, '.1f')} s per checkpoint: "
            f"{c.gradient_seconds_source})"
        )
    if c.best_gradient_auroc is None or c.cleanlab_auroc is None:
        return out
    ratio = c.cleanlab_over_best_gradient_compute
    within = c.within_0_01_of_cleanlab_or_better
    out.append(
        f"best gradient detector {c.best_gradient_detector} AUROC "
        f"{c.best_gradient_auroc:.4f} vs cleanlab {c.cleanlab_auroc:.4f} "
        f"(gap {_fmt(c.auroc_gap_vs_cleanlab, '+.4f')}; "
        f"{'within 0.01 or better' if within else 'worse by more than 0.01'})"
        + (f"; cleanlab needs {ratio:.1f}x its compute" if ratio else "")
    )
    same = c.cleanlab_over_best_gradient_compute_same_load
    if same and (not ratio or abs(same - ratio) > 0.05):
        out.append(
            "(with its training time estimated from cleanlab's CV folds, i.e. "
            f"timed under the same load: {same:.1f}x)"
        )
    return out


def _baseline_lines(baselines: Baselines) -> list[str]:
    out = []
    for name, info in baselines.items():
        if info.skipped:
            out.append(f"{name}: skipped ({info.skipped})")
            continue
        out.append(f"{name}: {info.method or ''}")
        if baselines.cleanlab is info and baselines.cleanlab.n_label_issues is not None:
            cl = baselines.cleanlab
            out.append(
                f"  find_label_issues flags {cl.n_label_issues} samples "
                f"(precision {_fmt(cl.label_issues_precision)}, recall "
                f"{_fmt(cl.label_issues_recall)})"
            )
        out += [f"  note: {note}" for note in info.notes]
    return out


def _retrain_lines(rt: RetrainResults) -> list[str]:
    out = [
        "",
        f"Retraining: final-epoch test accuracy on the {rt.n_test} held-out samples, "
        f"mean ± std over seeds {rt.seeds}; {rt.models_trained} models trained, "
        f"{_fmt(rt.seconds_per_model, '.1f')} s each",
        text_table(
            ["reference", "trimmed", "test accuracy"],
            [[f"{r.method} ({r.label})", str(r.n_trimmed), mean_std(r)] for r in rt.references],
        ),
    ]
    headers = ["method"]
    for k in rt.trim_percents:
        sized = rt.row("random", k)
        headers.append(f"trim {k:g}%" + (f" ({sized.n_trimmed})" if sized else ""))
    rows = []
    for name in rt.method_order():
        cells = [name]
        for k in rt.trim_percents:
            r = rt.row(name, k)
            cells.append("-" if r is None else f"{mean_std(r)} [{_fmt(r.flipped_trimmed, 'g')} fl]")
        rows.append(cells)
    out += ["", text_table(headers, rows)]
    out.append("[N fl] = flipped samples among the trimmed (mean over seeds)")
    if rt.no_trim_reproduces_run is False:
        out.append(
            "note: retraining without trimming did not reproduce the run's test "
            "accuracy exactly (non-deterministic kernels?)"
        )
    return out


def format_report(report: EvaluationReport) -> str:
    """The report as readable text tables."""
    out = [f"ogad evaluate: {report.run_dir}"]
    d = report.data
    if d is not None:
        noise = d.noise or {}
        out.append(
            f"data {d.spec}: {d.n_train} train / {d.n_test or 0} test, "
            f"{d.n_flipped} labels flipped ({noise.get('kind', '?')} noise)"
        )
    out += [
        "",
        "Detection of the flipped labels (higher score = more suspicious; seconds = the "
        "method alone, total = incl. training the model and extracting the gradients)",
        text_table(DETECTION_HEADERS, [_detection_cells(r) for r in report.detection]),
    ]
    if report.compute is not None:
        out += _cost_lines(report.compute)
    if report.baselines is not None:
        out += _baseline_lines(report.baselines)
    out += [f"note: {note}" for note in report.notes]
    if report.retrain is not None:
        out += _retrain_lines(report.retrain)
    return "\n".join(out)

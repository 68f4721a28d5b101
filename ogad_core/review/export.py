"""The cleaned-index export (``ogad export`` and the dashboard's download). Torch-free.

One row per sample, sample_id order, columns :data:`EXPORT_COLUMNS`::

    sample_id, ref, original_label, final_label, decision, score, rank, keep[, issues]

``issues`` (when the run has issues.parquet): the sample's flagged issue names, ``;``-separated
(``label;duplicate``), empty when none.
Labels are label names. ``confirmed`` → keep = false; ``relabeled`` → keep = true with the new
final_label; ``rejected`` / ``unreviewed`` → keep = true with the original label. score / rank
come from one detector (default ``DEFAULT_DETECTOR`` when the run has it, else the first one;
``ogad_core.options.DEFAULT_DETECTOR_REASON`` says why); they are
empty when the run has no scores yet. ``keep`` is written as ``true`` / ``false``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pandas as pd

from ogad_core._internal import log, one_line, write_text_atomic
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.options import DEFAULT_DETECTOR
from ogad_core.review.store import CONFIRMED, RELABELED, UNREVIEWED, ReviewStore
from ogad_core.run.rundir import RunDir, check_output_path

EXPORT_COLUMNS = [
    "sample_id",
    "ref",
    "original_label",
    "final_label",
    "decision",
    "score",
    "rank",
    "keep",
]


def default_detector(detectors: list[str]) -> str | None:
    """``DEFAULT_DETECTOR`` when present, else the first detector, else None (no scores yet)."""
    if DEFAULT_DETECTOR in detectors:
        return DEFAULT_DETECTOR
    return detectors[0] if detectors else None


def choose_detector(run: RunDir, detector: str | None) -> str | None:
    """The detector whose score / rank to use; ConfigError for one the run does not have."""
    detectors = run.detectors()
    if detector is None:
        return default_detector(detectors)
    if detector not in detectors:
        have = ", ".join(detectors) if detectors else "none (run `ogad score DIR`)"
        raise ConfigError(f"unknown detector {detector!r}; this run has: {have}")
    return detector


def build_export_frame(
    run_dir: str | os.PathLike[str] | RunDir,
    *,
    detector: str | None = None,
    store: ReviewStore | None = None,
) -> pd.DataFrame:
    """The export table, (N, 8) with columns EXPORT_COLUMNS (+ ``issues`` when the run has
    issues.parquet), sample_id order.

    Args:
        run_dir: the run directory.
        detector: whose score / rank to include (default: see :func:`default_detector`).
        store: an open ReviewStore of the same run (default: opened here).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    run.read_manifest()
    names = run.label_names()
    samples = run.read_samples().sort_values("sample_id", kind="stable").reset_index(drop=True)
    chosen = choose_detector(run, detector)
    if store is None:
        store = ReviewStore(
            run,
            sample_ids=samples["sample_id"].to_numpy(),
            labels=samples["label"].to_numpy(),
            label_names=names,
        )
    decisions = store.current()[["sample_id", "decision", "new_label"]]
    table = samples[["sample_id", "ref", "label"]].merge(decisions, on="sample_id", how="left")
    table["decision"] = table["decision"].fillna(UNREVIEWED).astype(str)

    label_name = pd.Series(names, dtype="object")
    original = label_name.reindex(table["label"].to_numpy()).to_numpy()
    relabeled = (table["decision"] == RELABELED).to_numpy()
    final = original.copy()
    if relabeled.any():
        new_index = table.loc[relabeled, "new_label"].astype("int64").to_numpy()
        final[relabeled] = label_name.reindex(new_index).to_numpy()

    if chosen is not None:
        scores = run.read_scores()[["sample_id", f"{chosen}_score", f"{chosen}_rank"]]
        scores = scores.rename(columns={f"{chosen}_score": "score", f"{chosen}_rank": "rank"})
        table = table.merge(scores, on="sample_id", how="left")
        score = table["score"].astype("float64")
        rank = table["rank"].astype("Int64")
    else:
        score = pd.Series(float("nan"), index=table.index, dtype="float64")
        rank = pd.Series(pd.NA, index=table.index, dtype="Int64")

    frame = pd.DataFrame(
        {
            "sample_id": table["sample_id"].astype("int64"),
            "ref": table["ref"].astype(str),
            "original_label": pd.Series(original, dtype="object"),
            "final_label": pd.Series(final, dtype="object"),
            "decision": table["decision"],
            "score": score,
            "rank": rank,
            "keep": (table["decision"] != CONFIRMED).to_numpy(),
        },
        columns=EXPORT_COLUMNS,
    )
    issues = _issue_names(run, frame["sample_id"].to_numpy())
    if issues is not None:
        frame["issues"] = issues
    return frame


def _issue_names(run: RunDir, sample_ids: Any) -> list[str] | None:
    """Each sample's flagged issue names (``;``-separated), or None without issues.parquet."""
    from ogad_core.issues.queue import flagged_names

    if not run.issues_path.is_file():
        return None
    try:
        issues = run.read_issues()
    except RunDirError as err:
        log.warning(f"export without the issues column: {one_line(err, 100)}")
        return None
    names = flagged_names(issues, int(sample_ids.max()) + 1 if len(sample_ids) else 0)
    return [names[int(i)] for i in sample_ids]


#: a cell a spreadsheet would run as a formula (CSV injection) begins with one of these
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def escape_formula(cell: object) -> object:
    """A text cell that begins with ``= + - @``, a tab or a carriage return, prefixed with ``'``
    so that a spreadsheet shows it as text instead of running it; a plain number (``-1``) and
    anything not text are left as they are."""
    if isinstance(cell, str) and cell.startswith(FORMULA_LEADS) and not _PLAIN_NUMBER.match(cell):
        return "'" + cell
    return cell


def frame_to_csv(frame: pd.DataFrame, *, only_kept: bool = False, raw: bool = False) -> str:
    """The CSV text of an export frame (``keep`` as ``true`` / ``false``); text cells that a
    spreadsheet would run as formulas are escaped (:func:`escape_formula`) unless ``raw``."""
    if only_kept:
        frame = frame[frame["keep"]]
    out = frame.copy()
    out["keep"] = out["keep"].map({True: "true", False: "false"})
    if not raw:
        for column in out.columns:
            if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
                out[column] = out[column].map(escape_formula)
    return out.to_csv(index=False, lineterminator="\n")


def export_csv_text(
    run_dir: str | os.PathLike[str] | RunDir,
    *,
    only_kept: bool = False,
    detector: str | None = None,
    store: ReviewStore | None = None,
    raw: bool = False,
) -> str:
    """The export CSV as text: exactly what :func:`export_csv` writes."""
    frame = build_export_frame(run_dir, detector=detector, store=store)
    return frame_to_csv(frame, only_kept=only_kept, raw=raw)


def export_csv(
    run_dir: str | os.PathLike[str] | RunDir,
    out_path: str | os.PathLike[str],
    *,
    only_kept: bool = False,
    detector: str | None = None,
    raw: bool = False,
) -> int:
    """Write the export CSV atomically to ``out_path``; returns the number of rows written.

    Text cells beginning with ``= + - @`` are prefixed with ``'`` (a spreadsheet never runs
    them as formulas); ``raw`` writes them verbatim, for programs.

    When ``out_path`` is a symbolic link the file it points to is replaced; the link stays.
    Refused before any work (ConfigError): a path the run owns (directly or through a link), a
    folder, an existing FIFO, device or socket (:func:`~ogad_core.run.rundir.check_output_path`).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    check_output_path(out_path, run)  # before any work
    frame = build_export_frame(run, detector=detector)
    if only_kept:
        frame = frame[frame["keep"]]
    text = frame_to_csv(frame, raw=raw)
    # checked again just before writing: a link's target is written (os.replace onto the
    # link would replace the link); never the run's own files, a folder or a special file
    out = check_output_path(out_path, run)
    try:
        write_text_atomic(out, text)
    except OSError as err:
        raise ConfigError(f"cannot write {out}: {err.strerror or err}") from None
    return len(frame)

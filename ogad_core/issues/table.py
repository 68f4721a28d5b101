"""Run the issue types on a context and lay their results out as issues.parquet.

issues.parquet (../shared/CONTRACT.md): one row per sample and issue type::

    sample_id, issue, score (higher = worse), rank (1 = worst within the issue), flagged,
    set_id (duplicates: the samples of one set share it; else null)

plus ``explanation``, the card's one line for the flagged rows (empty for the others).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from ogad_core._internal import log
from ogad_core.issues.base import IssueContext, IssueType
from ogad_core.issues.queue import all_queue, flagged_names
from ogad_core.issues.registry import resolve_issue_types
from ogad_core.scoring.detectors import rank_scores

__all__ = [
    "ISSUE_COLUMNS",
    "all_queue",
    "fit_in_turn",
    "fit_issue_types",
    "flagged_names",
    "issues_table",
]

ISSUE_COLUMNS = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]


def fit_issue_types(
    context: IssueContext, specs: Sequence[str | type | IssueType]
) -> list[IssueType]:
    """Each spec resolved and fitted on ``context`` (:func:`fit_in_turn`: the kNN searches are
    shared, then released); returned in the order of ``specs``."""
    types = resolve_issue_types(specs)
    for _ in fit_in_turn(context, types):
        pass
    return types


def fit_in_turn(context: IssueContext, types: Sequence[IssueType]) -> Iterator[IssueType]:
    """Each of ``types`` fitted on ``context``, a type's ``after`` types first, yielded once
    fitted; before it is yielded the cached neighbour searches that no type still to be fitted
    reads (:meth:`~ogad_core.issues.base.IssueType.neighbour_spaces`) are released."""
    names = [t.name for t in types]
    ordered = sorted(types, key=lambda t: len([a for a in t.after if a in names]))
    for position, est in enumerate(ordered):
        est.fit(context)
        context.results[est.name] = est
        log.info(f"issues: {est.name} flags {int(est.flagged_.sum())} samples")
        context.release_neighbours(_read_later(context, ordered[position + 1 :]))
        yield est


def _read_later(context: IssueContext, types: Sequence[IssueType]) -> set[str] | None:
    """The neighbour spaces the given types read (None when one of them does not say)."""
    spaces: set[str] = set()
    for est in types:
        read = est.neighbour_spaces(context)
        if read is None:
            return None
        spaces |= read
    return spaces


def issue_frame(est: IssueType, sample_ids: np.ndarray) -> pd.DataFrame:
    """One fitted issue type's rows of issues.parquet."""
    flagged = np.asarray(est.flagged_, dtype=bool)
    sets = pd.array(np.where(est.set_ids_ >= 0, est.set_ids_, 0), dtype="Int64")
    sets[est.set_ids_ < 0] = pd.NA
    return pd.DataFrame(
        {
            "sample_id": sample_ids.astype(np.int64),
            "issue": est.name,
            "score": est.scores_.astype(np.float64),
            "rank": rank_scores(est.scores_, sample_ids).astype(np.int64),
            "flagged": flagged,
            "set_id": sets,
            "explanation": [est.explain(int(i)) if f else "" for i, f in enumerate(flagged)],
        }
    )


def issues_table(fitted: Sequence[IssueType], sample_ids: np.ndarray) -> pd.DataFrame:
    """issues.parquet's table for the fitted issue types (issue order, then sample_id)."""
    if not fitted:
        return pd.DataFrame({c: [] for c in ISSUE_COLUMNS})
    return pd.concat([issue_frame(e, sample_ids) for e in fitted], ignore_index=True)

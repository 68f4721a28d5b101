"""Run the issue types on a context and lay their results out as issues.parquet.

issues.parquet (../shared/CONTRACT.md): one row per sample and issue type::

    sample_id, issue, score (higher = worse), rank (1 = worst within the issue), flagged,
    set_id (duplicates: the samples of one set share it; else null)

plus ``explanation``, the card's one line for the flagged rows (empty for the others).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ogad_core._internal import log
from ogad_core.issues.base import IssueContext, IssueType
from ogad_core.issues.registry import resolve_issue_type
from ogad_core.scoring.detectors import rank_scores

ISSUE_COLUMNS = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
#: the "All" queue's tie order between issue types at the same relative position
ALL_PRIORITY = ("corrupt", "duplicate", "label", "outlier")


def fit_issue_types(
    context: IssueContext, specs: Sequence[str | type | IssueType]
) -> list[IssueType]:
    """Each spec resolved and fitted on ``context`` (the kNN graphs are shared), a type's
    ``after`` types first; returned in the order of ``specs``."""
    types = [resolve_issue_type(spec) for spec in specs]
    names = [t.name for t in types]
    for est in sorted(types, key=lambda t: (len([a for a in t.after if a in names]), 0)):
        est.fit(context)
        context.results[est.name] = est
        log.info(f"issues: {est.name} flags {int(est.flagged_.sum())} samples")
    return types


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


def all_queue(issues: pd.DataFrame) -> pd.DataFrame:
    """The "All" queue: every flagged sample once, ordered by its best relative position
    (its rank within its issue / that issue's number of flagged samples), ties by
    :data:`ALL_PRIORITY`. Columns sample_id, issue (the issue that placed it), position."""
    flagged = issues[issues["flagged"]].copy()
    if flagged.empty:
        return pd.DataFrame({"sample_id": [], "issue": [], "position": []})
    counts = flagged.groupby("issue")["sample_id"].transform("size")
    within = flagged.groupby("issue")["rank"].rank(method="first")
    flagged["position"] = within / counts
    order = {name: i for i, name in enumerate(ALL_PRIORITY)}
    flagged["tie"] = flagged["issue"].map(lambda n: order.get(n, len(order)))
    flagged = flagged.sort_values(["position", "tie", "sample_id"], kind="stable")
    best = flagged.drop_duplicates("sample_id", keep="first")
    return best[["sample_id", "issue", "position"]].reset_index(drop=True)


def flagged_names(issues: pd.DataFrame, n: int) -> list[str]:
    """(n,) the flagged issue names of each sample, ``;``-separated (export's ``issues``)."""
    out = [""] * n
    flagged = issues[issues["flagged"]]
    grouped = flagged.groupby("sample_id", sort=True)["issue"].agg(lambda s: ";".join(s))
    for sid, names in grouped.items():
        if 0 <= int(sid) < n:  # type: ignore[call-overload]
            out[int(sid)] = str(names)  # type: ignore[call-overload]
    return out

"""Reading issues.parquet: the "All" queue and each sample's flagged issue names. pandas only
(the dashboard and ``ogad export`` import it without scikit-learn or faiss)."""

from __future__ import annotations

import pandas as pd

#: the "All" queue's tiers: the label flags come after every other type's. The other types'
#: evidence is the input itself or its place among the data (an unreadable input, a copy, a
#: sample far from all others); the label flags are the review target's estimate of the wrong
#: labels, and where the model is weak most of them are its own errors (Rotten Tomatoes: 16-18%
#: of the label flags are wrong labels, 63-100% of the other types' flags are injected issues).
#: Types not named here (plugins) join the first tier.
ALL_LAST = ("label",)
#: the "All" queue's tie order between issue types at the same relative position
ALL_PRIORITY = ("corrupt", "leakage", "duplicate", "outlier", "label")


def all_queue(issues: pd.DataFrame) -> pd.DataFrame:
    """The "All" queue: every flagged sample once, the types of :data:`ALL_LAST` after the
    others; within each tier ordered by its relative position (its rank within its issue /
    that issue's number of flagged samples), ties by :data:`ALL_PRIORITY`. Columns sample_id,
    issue (the issue that placed it), position (the tier plus the relative position: 0 to 2)."""
    flagged = issues[issues["flagged"]].copy()
    if flagged.empty:
        return pd.DataFrame({"sample_id": [], "issue": [], "position": []})
    counts = flagged.groupby("issue")["sample_id"].transform("size")
    within = flagged.groupby("issue")["rank"].rank(method="first")
    tier = flagged["issue"].isin(ALL_LAST).astype(float)
    flagged["position"] = tier + within / counts
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

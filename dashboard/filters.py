"""Queue filters beyond dashboard.run_view.build_queue, and the review progress. Streamlit-free.

They narrow the queue: ``queue_rows`` takes the top k of the ranking first, then keeps the rows
these masks keep (a search looks at every sample: the page passes no top k then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ogad_core.review.store import CONFIRMED, RELABELED, UNREVIEWED

_ID_RE = re.compile(r"^#?\s*(\d+)$")


def search_mask(table: pd.DataFrame, text: str) -> pd.Series:
    """Rows whose sample id is ``text`` (``12`` or ``#12``) or whose ref (file name or text)
    contains it, case-insensitively. All rows for an empty search."""
    text = " ".join(str(text).split())
    if not text:
        return pd.Series(True, index=table.index)
    found = table["ref"].astype(str).str.contains(text, case=False, regex=False, na=False)
    number = _ID_RE.match(text)
    if number:
        found |= table["sample_id"] == int(number[1])
    return found


def filter_mask(
    table: pd.DataFrame,
    *,
    pred_classes: list[int] | None = None,
    disagree: bool = False,
    search: str = "",
) -> np.ndarray | None:
    """(N,) bool: the rows with the predicted label in ``pred_classes`` (all when empty), given !=
    predicted when ``disagree``, and matching ``search`` (see :func:`search_mask`); None = all."""
    if not pred_classes and not disagree and not str(search).strip():
        return None
    keep = np.ones(len(table), dtype=bool)
    if pred_classes:
        keep &= table["pred"].isin(pred_classes).to_numpy()
    if disagree:
        keep &= (table["label"] != table["pred"]).to_numpy()
    if str(search).strip():
        keep &= np.asarray(search_mask(table, search), dtype=bool)
    return keep


def filter_table(
    table: pd.DataFrame,
    *,
    pred_classes: list[int] | None = None,
    disagree: bool = False,
    search: str = "",
) -> pd.DataFrame:
    """The rows :func:`filter_mask` keeps."""
    keep = filter_mask(table, pred_classes=pred_classes, disagree=disagree, search=search)
    return table if keep is None else table[keep]


def given_by_predicted(table: pd.DataFrame, label_names: list[str]) -> pd.DataFrame:
    """Counts of samples by given label (rows) and predicted label (columns), every class;
    plain string index and columns (one per class name, in class order)."""
    counts = pd.crosstab(
        pd.Categorical(table["label_name"], categories=label_names),
        pd.Categorical(table["pred_name"], categories=label_names),
        dropna=False,
    ).astype(int)
    return pd.DataFrame(
        counts.to_numpy(),
        index=pd.Index([str(n) for n in label_names], name="given \\ predicted"),
        columns=[str(n) for n in label_names],
    )


@dataclass(frozen=True)
class Progress:
    """How far the review is: ``reviewed`` samples of ``n_target`` (the review target) and of
    ``n_samples``; ``found`` confirmed or relabeled; ``remaining_flagged`` the estimated number of
    bad samples not yet found (noise rate x N - found, at least 0)."""

    reviewed: int
    n_target: int
    n_samples: int
    found: int
    remaining_flagged: int

    @property
    def of_target(self) -> float:
        return min(1.0, self.reviewed / self.n_target) if self.n_target else 1.0

    @property
    def of_run(self) -> float:
        return self.reviewed / self.n_samples if self.n_samples else 0.0


def share_text(fraction: float) -> str:
    """A share as a whole percentage that never reads as done or as nothing when it is not:
    "0%", "<1%", "37%", ">99%", "100%"."""
    if 0.0 < fraction < 0.01:
        return "<1%"
    if 0.99 < fraction < 1.0:
        return ">99%"
    return f"{fraction:.0%}"


def review_progress(table: pd.DataFrame, n_target: int, noise_rate: float) -> Progress:
    """Progress of the review of ``table`` (with a ``status`` column) toward ``n_target``."""
    status = table["status"]
    reviewed = int((status != UNREVIEWED).sum())
    found = int(status.isin([CONFIRMED, RELABELED]).sum())
    expected_bad = round(float(noise_rate) * len(table))
    return Progress(
        reviewed=reviewed,
        n_target=int(n_target),
        n_samples=len(table),
        found=found,
        remaining_flagged=max(0, expected_bad - found),
    )

"""The issue types in the dashboard, without Streamlit: the selector's counts, each issue's
queue, the "All" queue, duplicate sets, the why line, the map's issue colours and the per-class
health of the Summary page. Read from issues.parquet (``ogad compute`` / ``ogad issues``).

The "All" queue (``ogad_core.issues.table.all_queue``) lists every flagged sample once, by its
best relative position within its own issue's queue (rank / number flagged), so the surest
samples of every kind come first; the label flags come after the other types' (see
``ogad_core.issues.queue.ALL_LAST``); ties go corrupt, leakage, duplicate, outlier. A duplicate
set is one card there, at its first member's place (the other members leave the queue): it is
reviewed as a set (Keep one / Keep all), never one member at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ogad_core.issues.queue import all_queue
from ogad_core.run.rundir import RunDir

ALL = "all"
LABEL = "label"
#: the parts of the label type's explanation a label card shows
#: (``ogad_core.issues.label.LabelIssue.explain``)
_NEIGHBOUR_SHARE = re.compile(r"(\d+) of its (\d+) nearest samples carry its label")
_TRUE_CLASS = re.compile(r"likeliest true class (.+) at ([\d.]+)\)")
#: the leakage type's reason: the held-out file the sample copies
_HELD_OUT_COPY = re.compile(
    r"(?:exact|near) copy of held-out (.*?)(?: \(as are \d+ other training samples\))?"
    r": the held-out score is inflated$",
    re.DOTALL,
)
DUPLICATE = "duplicate"
TITLES = {"label": "Label issues", "duplicate": "Duplicates", "outlier": "Outliers"}
TITLES["corrupt"] = "Corrupt"
TITLES["leakage"] = "Leakage"
LEAKAGE = "leakage"
#: issue types left out of the selector while they flag nothing (leakage without --holdout)
HIDDEN_WHEN_EMPTY = (LEAKAGE,)
#: map colours of the issue types (a sample flagged by several takes the first in this order)
ISSUE_COLORS = {
    "corrupt": "#D1495B",
    "duplicate": "#7B5EA7",
    "label": "#EDAE49",
    "outlier": "#2E86AB",
    "leakage": "#F28E2B",
}
NONE_COLOR = "#C9CED6"
OTHER_COLOR = "#5C6B73"


@dataclass
class IssueView:
    """issues.parquet of one run, indexed for the pages.

    Attributes:
        table: issues.parquet (sample_id, issue, score, rank, flagged, set_id, explanation).
        names: the issue types in the file, in its order.
    """

    table: pd.DataFrame
    names: list[str]
    #: issue type -> how its flag is decided, in words (the issues step's manifest record)
    thresholds: dict[str, str] = field(default_factory=dict)
    #: the detector whose scores the label type ranked with (None without a label type)
    label_detector: str | None = None
    _flagged: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _label: tuple[np.ndarray, ...] | None = field(default=None, repr=False)
    _why: dict[int, list[str]] | None = field(default=None, repr=False)
    _members: dict[int, list[int]] | None = field(default=None, repr=False)
    _sets: pd.Series | None = field(default=None, repr=False)
    _ranks: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _scores: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def flagged_ids(self, issue: str) -> np.ndarray:
        """(m,) sample ids flagged by ``issue`` (``all``: the All queue), queue order."""
        if issue not in self._flagged:
            if issue == ALL:
                ids = self._all_rows()["sample_id"].to_numpy(dtype=np.int64)
            else:
                part = self.table[(self.table["issue"] == issue) & self.table["flagged"]]
                ids = part.sort_values("rank")["sample_id"].to_numpy(dtype=np.int64)
            self._flagged[issue] = ids
        return self._flagged[issue]

    def label_queue(
        self, sample_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The label type's order over a table whose rows are (N,) ``sample_ids``: ((N,) its
        score per row, higher = worse; (N,) row positions, its rank 1 first; (N,) bool, the
        rows only another issue type flags: :meth:`elsewhere_ids`), or None without a label
        type. Rows it does not score come last (score NaN). Cached per ``sample_ids``."""
        if LABEL not in self.names:
            return None
        ids = np.asarray(sample_ids)
        if self._label is None or not np.array_equal(self._label[0], ids):
            part = self.table[self.table["issue"] == LABEL].set_index("sample_id")
            scores = part["score"].reindex(ids).to_numpy(dtype=np.float64)
            ranks = part["rank"].reindex(ids).to_numpy(dtype=np.float64)
            filled = np.where(np.isnan(ranks), np.inf, ranks)
            elsewhere = np.isin(ids, self.elsewhere_ids())
            self._label = (ids.copy(), scores, np.lexsort((ids, filled)), elsewhere)
        return self._label[1], self._label[2], self._label[3]

    def scores(self, issue: str, sample_ids: np.ndarray) -> np.ndarray:
        """(N,) ``issue``'s score per row of a table whose rows are (N,) ``sample_ids``
        (higher = surer; NaN where it scores no sample). Cached per issue and ``sample_ids``."""
        ids = np.asarray(sample_ids)
        cached = self._scores.get(issue)
        if cached is None or not np.array_equal(cached[0], ids):
            part = self.table[self.table["issue"] == issue].set_index("sample_id")["score"]
            cached = (ids.copy(), part.reindex(ids).to_numpy(dtype=np.float64))
            self._scores[issue] = cached
        return cached[1]

    def score_range(self, issue: str) -> tuple[float, float, float] | None:
        """(lowest, highest, median of its flags) of ``issue``'s finite scores: a score
        threshold's range and default; None when it has no finite score."""
        part = self.table[self.table["issue"] == issue]
        scores = part["score"].to_numpy(dtype=np.float64)
        finite = np.isfinite(scores)
        if not finite.any():
            return None
        flags = scores[finite & part["flagged"].to_numpy(dtype=bool)]
        middle = float(np.median(flags)) if len(flags) else float(np.median(scores[finite]))
        return float(scores[finite].min()), float(scores[finite].max()), middle

    def n_flagged(self, issue: str) -> int:
        return len(self.flagged_ids(issue))

    def ranks(self, issue: str) -> pd.DataFrame:
        """``issue``'s rank and score per sample (columns rank, score; index sample_id)."""
        if issue not in self._ranks:
            part = self.table[self.table["issue"] == issue]
            self._ranks[issue] = part.set_index("sample_id")[["rank", "score"]]
        return self._ranks[issue]

    def card_rank(self, issue: str, sample_id: int) -> tuple[str, str]:
        """(text, tooltip) of a card's rank in ``issue``'s queue: that type's rank and score
        (``rank 3 · score 0.912``), or in the All queue its priority place and the type that
        placed it there (``priority 3 · outlier rank 2``)."""
        sid = int(sample_id)
        if issue == ALL:
            return self._all_rank(sid)
        rank, score = self._rank_of(issue, sid)
        if rank is None:
            return f"not ranked by the {issue} issue type", ""
        tip = (
            f"The {issue} issue type's rank and score: this queue's order (the place above is "
            f"the queue as shown, after filters{' and re-ranking' if issue == LABEL else ''})."
        )
        return f"rank {rank:,} · score {score:.3f}", tip

    def _rank_of(self, issue: str, sid: int) -> tuple[int | None, float]:
        ranks = self.ranks(issue)
        if sid not in ranks.index:
            return None, float("nan")
        rank, score = ranks.loc[[sid]].to_numpy(dtype=np.float64)[0]
        return (None if np.isnan(rank) else int(rank)), float(score)

    def _all_rank(self, sid: int) -> tuple[str, str]:
        ids = self.flagged_ids(ALL)
        found = np.flatnonzero(ids == sid)
        if not len(found):
            return "not flagged by an issue type", ""
        place = int(found[0]) + 1
        issue = str(self._all_issue()[sid])
        rank, score = self._rank_of(issue, sid)
        if rank is None:
            return f"priority {place:,} · {issue}", ""
        tip = (
            f"The All queue's priority: place {place:,} of {len(ids):,}, set by its {issue} "
            f"rank ({rank:,}, of the {self.n_flagged(issue):,} that type flags; score "
            f"{score:.3f}); the place above is the queue as shown, after filters."
        )
        return f"priority {place:,} · {issue} rank {rank:,}", tip

    def _all_issue(self) -> pd.Series:
        """The issue type that placed each sample in the All queue (index sample_id)."""
        if ALL not in self._ranks:
            self._ranks[ALL] = self._all_rows().set_index("sample_id")[["issue"]]
        return self._ranks[ALL]["issue"]

    def _all_rows(self) -> pd.DataFrame:
        """The All queue (``all_queue``: sample_id, issue, position) with each duplicate set
        once: its first member in that order stands for the set."""
        rows = all_queue(self.table)
        set_of = self._set_ids().reindex(rows["sample_id"].to_numpy()).to_numpy()
        later = pd.Series(set_of).duplicated().to_numpy() & ~pd.isna(set_of)
        return rows[~later].reset_index(drop=True)

    def _set_ids(self) -> pd.Series:
        """The duplicate set of each flagged set member (index sample_id). Cached: All asks on
        every rerun (:meth:`open_set_cards`)."""
        if self._sets is None:
            dup = self.table[(self.table["issue"] == DUPLICATE) & self.table["flagged"]]
            self._sets = dup.set_index("sample_id")["set_id"]
        return self._sets

    def set_members(self, sample_id: int) -> list[int]:
        """The sample ids of the duplicate set holding ``sample_id``, in rank order (the set
        card's members); empty when no set holds it."""
        if self._members is None:
            self._members = {}
            for members in self.duplicate_sets():
                for sid in members:
                    self._members[sid] = members
        return self._members.get(int(sample_id), [])

    def open_set_cards(self, unreviewed: np.ndarray) -> np.ndarray:
        """(m,) sample ids of All's set cards (each set's first member there) whose set still
        holds a member of ``unreviewed`` (sample ids): the set stays in All while any member
        is undecided, also when its first member was decided alone in another queue."""
        set_of = self._set_ids()
        open_sets = set_of.reindex(np.asarray(unreviewed, dtype=np.int64)).dropna().unique()
        cards = self.flagged_ids(ALL)
        card_set = set_of.reindex(cards).to_numpy()
        return cards[~pd.isna(card_set) & np.isin(card_set, open_sets)]

    def with_set_members(self, sample_ids: np.ndarray) -> np.ndarray:
        """(k,) ``sample_ids`` (All's cards, in order) with each set card followed by the set's
        other members (rank order): what the map outlines for them."""
        out: list[int] = []
        for sid in np.asarray(sample_ids, dtype=np.int64).tolist():
            members = self.set_members(sid)
            out += [sid, *[m for m in members if m != sid]] if members else [sid]
        return np.asarray(out, dtype=np.int64)

    def card_issue(self, queue: str, sample_id: int) -> str:
        """The issue type a card of ``queue`` is reviewed as: the queue's own type, in All
        ``duplicate`` for a set's card, else the type that placed the sample there (``label``
        for a sample All does not list)."""
        if queue != ALL:
            return queue
        sid = int(sample_id)
        if self.set_members(sid):
            return DUPLICATE
        placed = self._all_issue()
        return str(placed[sid]) if sid in placed.index else LABEL

    def elsewhere_ids(self) -> np.ndarray:
        """(m,) sample ids another issue type flags and the label type does not (reviewed in
        those queues: the label queue's progress leaves their decisions out)."""
        if "elsewhere" not in self._flagged:
            flagged = self.table[self.table["flagged"]]
            label = flagged.loc[flagged["issue"] == LABEL, "sample_id"]
            other = flagged.loc[flagged["issue"] != LABEL, "sample_id"]
            ids = np.setdiff1d(other.to_numpy(dtype=np.int64), label.to_numpy(dtype=np.int64))
            self._flagged["elsewhere"] = ids
        return self._flagged["elsewhere"]

    def n_sets(self) -> int:
        dup = self.table[(self.table["issue"] == DUPLICATE) & self.table["flagged"]]
        return int(dup["set_id"].nunique())

    def options(self) -> dict[str, str]:
        """Selector key -> its label with the count (``Duplicates 50 sets``), All last."""
        out = {}
        for name in self.names:
            title = TITLES.get(name, name.replace("_", " ").capitalize())
            if name in HIDDEN_WHEN_EMPTY and not len(self.flagged_ids(name)):
                continue
            if name == DUPLICATE:
                n_sets = self.n_sets()
                out[name] = f"{title} {n_sets:,} set{'' if n_sets == 1 else 's'}"
            else:
                out[name] = f"{title} {len(self.flagged_ids(name)):,}"
        out[ALL] = f"All {len(self.flagged_ids(ALL)):,}"
        return out

    def why(self, sample_id: int) -> list[str]:
        """``issue: explanation`` for each issue that flags the sample."""
        if self._why is None:
            why: dict[int, list[str]] = {}
            flagged = self.table[self.table["flagged"]]
            for r in flagged.itertuples():
                sid = int(r.sample_id)  # type: ignore[arg-type]
                why.setdefault(sid, []).append(f"{r.issue}: {r.explanation}")
            self._why = why
        return self._why.get(int(sample_id), [])

    def duplicate_kind(self, sample_id: int) -> str:
        """How the duplicate type matched the sample ("exact copy", "near duplicate", "near
        duplicate (aligned by a shift, rotation or rescale)"): its explanation before " of #";
        empty when the duplicate type does not flag it."""
        why = self.reason(DUPLICATE, sample_id)
        return why.partition(" of #")[0] if " of #" in why else ""

    def label_evidence(self, sample_id: int) -> str:
        """What the label type adds to a label card's why line (the detector's loss and margin,
        the model's guess), in one short line: the likeliest true class and how many of the
        sample's nearest samples carry its label ("likely 2 (0.98) · 0/42
        neighbours agree"); empty when the label type does not flag the sample or says
        neither."""
        why = self.reason(LABEL, sample_id)
        share = _NEIGHBOUR_SHARE.search(why)
        likely = _TRUE_CLASS.search(why)
        parts = (
            f"likely {likely.group(1)} ({likely.group(2)})" if likely else "",
            f"{share.group(1)}/{share.group(2)} neighbours agree" if share else "",
        )
        return " · ".join(part for part in parts if part)

    def reason(self, issue: str, sample_id: int) -> str:
        """``issue``'s explanation of the sample when it flags it, else an empty string."""
        prefix = f"{issue}: "
        return next((w[len(prefix) :] for w in self.why(sample_id) if w.startswith(prefix)), "")

    def leak(self, sample_id: int) -> str:
        """The leakage type's reason when it flags the sample (a copy of a held-out file), else
        an empty string."""
        return self.reason(LEAKAGE, sample_id)

    def held_out_ref(self, sample_id: int) -> str:
        """The held-out file (or text) the sample copies, read from the leakage type's reason
        (``ogad_core.issues.leakage.LeakageIssue.explain``); empty when it flags no leak."""
        match = _HELD_OUT_COPY.match(self.reason(LEAKAGE, sample_id))
        return match.group(1) if match else ""

    def duplicate_sets(self, unreviewed: np.ndarray | None = None) -> list[list[int]]:
        """The duplicate sets, worst first (conflicting labels first), each as its members'
        sample ids in rank order; with ``unreviewed`` (sample ids) only sets that still hold
        an unreviewed member."""
        dup = self.table[(self.table["issue"] == DUPLICATE) & self.table["flagged"]]
        if dup.empty:
            return []
        dup = dup.sort_values("rank")
        open_ids = None if unreviewed is None else set(np.asarray(unreviewed).tolist())
        sets = []
        for _, members in dup.groupby("set_id", sort=False):
            ids = members["sample_id"].astype(int).tolist()
            if open_ids is None or any(i in open_ids for i in ids):
                sets.append(ids)
        return sets

    def codes(self, sample_ids: np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
        """Map colouring: (N,) codes into (names, colours): the sample's first flagged issue in
        :data:`ISSUE_COLORS` order, ``none`` when unflagged."""
        names = [n for n in ISSUE_COLORS if n in self.names]
        names += [n for n in self.names if n not in names]
        colors = [ISSUE_COLORS.get(n, OTHER_COLOR) for n in names]
        codes = np.full(len(sample_ids), len(names), dtype=np.int64)
        position = pd.Series(np.arange(len(sample_ids)), index=np.asarray(sample_ids))
        for code in range(len(names) - 1, -1, -1):  # the first name wins: written last
            ids = self.flagged_ids(names[code])
            rows = position.reindex(ids).dropna().to_numpy(dtype=np.int64)
            codes[rows] = code
        return codes, [*names, "none"], [*colors, NONE_COLOR]


def load_issue_view(run_path: str | Path) -> IssueView | None:
    """The run's IssueView, or None when it has no (readable) issues.parquet."""
    rd = RunDir(run_path)
    if not rd.issues_path.is_file():
        return None
    try:
        table = rd.read_issues()
    except Exception:  # a damaged file: the page works without issue types
        return None
    if "explanation" not in table:
        table["explanation"] = ""
    names = list(dict.fromkeys(table["issue"].astype(str)))
    types = _step_types(rd)
    return IssueView(
        table=table,
        names=names,
        thresholds={k: str(v.get("threshold", "")) for k, v in types.items()},
        label_detector=_label_detector(rd, types) if LABEL in names else None,
    )


def _step_types(rd: RunDir) -> dict[str, dict]:
    """Issue type -> the issues step's manifest record of it (``flagged``, ``threshold``, the
    label type's ``detector``); empty for a run made before the step recorded them, or an
    unreadable manifest."""
    try:
        types = rd.read_manifest().get("steps", {}).get("issues", {}).get("types", {})
    except Exception:
        return {}
    return {str(k): v for k, v in types.items() if isinstance(v, dict)}


def _label_detector(rd: RunDir, types: dict[str, dict]) -> str | None:
    """The detector the label type ranked with: the issues step's record, else (a run made
    before it recorded one) the step's own choice: the default detector when the run has its
    scores, else the run's first detector."""
    from ogad_core.review.export import default_detector  # the step's rule (load_context)

    recorded = types.get(LABEL, {}).get("detector")
    if recorded:
        return str(recorded)
    try:
        return default_detector(rd.detectors())
    except Exception:  # an unreadable scores.parquet: no label order
        return None


def queue_progress(iv: IssueView, issue: str, table: pd.DataFrame) -> tuple[int, int, str]:
    """(reviewed, flagged, rule) of an issue type's own queue (``all``: every flagged sample
    once): how many of its flagged samples have a decision in ``table`` (sample_id, status),
    how many it flags, and how it decides the flag."""
    from ogad_core.review.store import UNREVIEWED

    ids = iv.flagged_ids(issue)
    status = table.set_index("sample_id")["status"].reindex(ids)
    decided = status.notna() & (status != UNREVIEWED)
    if issue == ALL:  # a set's card is reviewed once every member is
        undecided = table.loc[table["status"] == UNREVIEWED, "sample_id"].to_numpy()
        decided &= ~np.isin(ids, iv.open_set_cards(undecided))
    reviewed = int(decided.sum())
    if issue == ALL:
        rule = (
            "every sample some issue type flags, once (a duplicate set once, as a set), the "
            "surest of each type first; "
            "label issues after the other types"
        )
    else:
        rule = iv.thresholds.get(issue) or "as the issue type decides"
    return reviewed, len(ids), rule


def issue_order(iv: IssueView, issue: str, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, keep) for the review queue: (N,) row positions of the table whose sample ids
    are ``sample_ids``, ``issue``'s flagged samples first in its order, and (N,) bool of the
    flagged rows."""
    position = pd.Series(np.arange(len(sample_ids)), index=np.asarray(sample_ids))
    first = position.reindex(iv.flagged_ids(issue)).dropna().to_numpy(dtype=np.int64)
    keep = np.zeros(len(sample_ids), dtype=bool)
    keep[first] = True
    order = np.concatenate([first, np.flatnonzero(~keep)])
    return order, keep


def class_health(
    samples: pd.DataFrame, label_names: list[str], issues: IssueView | None = None
) -> pd.DataFrame:
    """Per given class: count, share of the data, the model's accuracy on it (prediction =
    given label), the estimated noise rate (confident learning: the share of its samples the
    confident joint puts in another class) and its flagged label issues."""
    from ogad_core.scoring.target import pseudo_pred_probs

    labels = samples["label"].to_numpy(dtype=np.int64)
    k = len(label_names)
    counts = np.bincount(labels, minlength=k)
    agree = np.bincount(labels, weights=samples["pred"].to_numpy() == labels, minlength=k)
    cl_labels, probs = pseudo_pred_probs(samples, k)
    noise = _noise_by_class(cl_labels, probs, k)
    out = pd.DataFrame(
        {
            "class": label_names,
            "count": counts,
            "share": counts / max(1, counts.sum()),
            "accuracy": np.divide(agree, counts, out=np.full(k, np.nan), where=counts > 0),
            "est. noise": noise,
        }
    )
    if issues is not None and LABEL in issues.names:
        flagged = np.isin(samples["sample_id"].to_numpy(), issues.flagged_ids(LABEL))
        out["label issues"] = np.bincount(labels[flagged], minlength=k)
    return out


def _noise_by_class(labels: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """(K,) share of each given class's samples that cleanlab's confident joint counts as
    belonging to another class (NaN where cleanlab cannot tell)."""
    try:
        from cleanlab.count import compute_confident_joint

        joint = compute_confident_joint(labels, probs, calibrate=False)
    except Exception:  # too few samples per class, cleanlab missing
        return np.full(k, np.nan)
    joint = np.asarray(joint, dtype=np.float64)
    rows = joint.sum(axis=1)
    off = rows - np.diag(joint)
    return np.divide(off, rows, out=np.full(k, np.nan), where=rows > 0)

"""The issue types on the review and Summary pages (Streamlit): the issue selector, the
duplicate-set cards and the per-class health table. The logic without Streamlit is in
:mod:`dashboard.issue_view`; the review page calls in here through a few small hooks.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import actions, cache, context, keys, state
from dashboard.issue_view import (
    ALL,
    DUPLICATE,
    LABEL,
    LEAKAGE,
    TITLES,
    IssueView,
    class_health,
    issue_order,
    load_issue_view,
    queue_progress,
)
from dashboard.table_component import BAR, PERCENT, frame_table
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED
from ogad_core.run.rundir import RunDir

if TYPE_CHECKING:
    from dashboard.map_view import MapLayer

__all__ = [
    "DUPLICATE",
    "LABEL",
    "LabelOrder",
    "duplicate_section",
    "health_section",
    "held_out_copy_html",
    "issue_selector",
    "label_detector",
    "label_order",
    "queue_override",
    "why_issue_html",
]

ISSUE = state.ISSUE  # the selected issue type (session state; kept in the address)
KEEP_PREFIX = "dupset_keep_"  # + set id: which member "Keep one" keeps
SETS_PER_PAGE = 6
SET_IMAGE_PX = 112
STATUS_TEXT = {
    UNREVIEWED: "unreviewed",
    CONFIRMED: "dropped",
    REJECTED: "kept",
    RELABELED: "relabeled",
}


def _stamp(run_path: str) -> tuple[int, int]:
    path = RunDir(run_path).issues_path
    try:
        st_ = path.stat()
    except OSError:
        return (0, 0)
    return (st_.st_mtime_ns, st_.st_size)


@st.cache_resource(max_entries=4, show_spinner=False)
def _issue_view(run_path: str, stamp: tuple[int, int]) -> IssueView | None:
    return load_issue_view(run_path)


def issue_view(run_path: str) -> IssueView | None:
    """The run's issues (re-read when issues.parquet changes), or None without them."""
    return _issue_view(run_path, _stamp(run_path))


def selected_issue(ctx: context.Context) -> str:
    """The issue type the reviewer picked (``label`` without issues.parquet)."""
    iv = issue_view(ctx.run_path)
    chosen = st.session_state.get(ISSUE, LABEL)
    if iv is None or (chosen not in iv.names and chosen != ALL):
        return LABEL
    return str(chosen)


def issue_selector(ctx: context.Context) -> str:
    """The selector above the queue (``Label issues 397 · Duplicates 50 sets · ... · All``);
    returns the chosen issue type."""
    iv = issue_view(ctx.run_path)
    options = {LABEL: ""} if iv is None else iv.options()
    if st.session_state.get(ISSUE) not in options:  # also a name from the address: checked
        st.session_state[ISSUE] = LABEL if LABEL in options else next(iter(options))
    state.remember_issue()
    if iv is None:
        return LABEL
    st.segmented_control(
        "Issue type",
        list(options),
        format_func=options.__getitem__,
        key=ISSUE,
        on_change=state.reset_page,
        help="Each issue type is its own ranked queue. All: every flagged sample once, the "
        "surest of each type first (its rank within its own queue / how many that type flags).",
    )
    return selected_issue(ctx)


@dataclass(frozen=True)
class LabelOrder:
    """The label issue type's order of the Label issues queue, over the run table's rows.

    Attributes:
        detector: the detector the label type ranked with (the sidebar's choice).
        scores: (N,) the label type's score per row (higher = worse): the re-ranking's base.
        order: (N,) row positions, its rank 1 first.
        n_flagged: how many samples it flags (the queue's length before the keep-going rule).
        key: names ``scores`` in caches (changes with issues.parquet).
        elsewhere: (N,) bool, the rows only another issue type flags (re-ranking keeps them
            after the others, as the label type ranks them after its flags).
        elsewhere_ids: their sample ids (their decisions, made in those queues, do not count
            toward this queue's length and progress).
    """

    detector: str
    scores: np.ndarray
    order: np.ndarray
    n_flagged: int
    key: str
    elsewhere: np.ndarray
    elsewhere_ids: np.ndarray

    def after_the_rest(self, order: np.ndarray) -> np.ndarray:
        """(N,) ``order`` (row positions) with the :attr:`elsewhere` rows moved to its end, in
        their order."""
        last = self.elsewhere[order]
        return np.concatenate([order[~last], order[last]])


def label_order(ctx: context.Context, detector: str | None) -> LabelOrder | None:
    """The label type's order when the Label issues queue is shown and ``detector`` (the
    sidebar's) is the one the label type ranked with; None otherwise (another issue queue,
    another detector chosen, a run without issues.parquet: the detector's order)."""
    iv = issue_view(ctx.run_path)
    if iv is None or detector is None or not label_order_applies(ctx, detector):
        return None
    ids = ctx.view.table["sample_id"].to_numpy()
    found = iv.label_queue(ids)
    if found is None:
        return None
    scores, order, elsewhere = found
    n_flagged = len(iv.flagged_ids(LABEL))
    key = f"label:{_stamp(ctx.run_path)}"
    return LabelOrder(detector, scores, order, n_flagged, key, elsewhere, iv.elsewhere_ids())


def other_queue_order(ctx: context.Context) -> str | None:
    """What orders the selected issue queue when it is not the label queue (None for the
    label queue or a run without issues): that type's rank, or All's priority."""
    issue = selected_issue(ctx)
    if issue == LABEL:
        return None
    return queue_order_text(issue)  # short: the header keeps Bulk and Undo on its line


def queue_order_note(issue: str) -> str:
    """The longer account of an issue queue's order (the header's tooltip)."""
    if issue == ALL:
        return (
            "The All queue's priority: every flagged sample once, each type's flags by their "
            "place in its own queue (rank / how many that type flags), so the surest of each "
            "type come first; label issues after the other types. Never re-ranked."
        )
    return f"The {issue} issue type's rank: its flags, surest first. Never re-ranked."


def label_order_applies(ctx: context.Context, detector: str | None) -> bool:
    """Whether the queue shown is the label issue type's order (see :func:`label_order`),
    without building it."""
    return selected_issue(ctx) == LABEL and detector is not None and label_detector(ctx) == detector


def queue_issue(ctx: context.Context, detector: str | None) -> str | None:
    """The issue type whose order the review queue shows: ``label`` when it follows the label
    type's order, the selected type otherwise (``all``: the All queue); None when the queue is
    the detector's order (another detector in Label issues, a run without issues.parquet)."""
    if label_order_applies(ctx, detector):
        return LABEL
    issue = selected_issue(ctx)
    return None if issue == LABEL else issue


def queue_order_text(issue: str) -> str:
    """What orders an issue type's queue, in words (``the outlier issue type's rank``)."""
    if issue == ALL:
        return "the All queue's priority"
    return f"the {issue} issue type's rank"


def card_rank(ctx: context.Context, issue: str, sample_id: int) -> tuple[str, str]:
    """(text, tooltip) of a card's rank in ``issue``'s queue (IssueView.card_rank)."""
    iv = issue_view(ctx.run_path)
    if iv is None:
        return "", ""
    return iv.card_rank(issue, sample_id)


def card_issue(ctx: context.Context, queue: str | None, sample_id: int) -> str | None:
    """The issue type a card of ``queue`` is reviewed as (IssueView.card_issue); None in the
    detector's order or without issues.parquet."""
    iv = issue_view(ctx.run_path)
    if iv is None or queue is None:
        return None
    return iv.card_issue(queue, sample_id)


def set_members(ctx: context.Context, sample_id: int) -> list[int]:
    """The members of the duplicate set holding ``sample_id`` (IssueView.set_members)."""
    iv = issue_view(ctx.run_path)
    return [] if iv is None else iv.set_members(sample_id)


def outside_sets(ctx: context.Context, sample_ids: list[int]) -> list[int]:
    """``sample_ids`` less the members of a duplicate set: in All a set is decided as a set
    (its card's Keep one / Keep all), never by a Bulk Confirm of one member."""
    iv = issue_view(ctx.run_path)
    return sample_ids if iv is None else [s for s in sample_ids if not iv.set_members(s)]


def open_set_rows(ctx: context.Context, table: pd.DataFrame) -> np.ndarray | None:
    """(N,) bool over ``table``'s rows: in All, the set cards whose set still holds an
    undecided member (the queue keeps them while it shows the unreviewed cards, also when the
    card's own sample was decided in another queue); None in every other queue."""
    iv = issue_view(ctx.run_path)
    if iv is None or selected_issue(ctx) != ALL:
        return None
    ids = table["sample_id"].to_numpy()
    return np.isin(ids, iv.open_set_cards(ids[(table["status"] == UNREVIEWED).to_numpy()]))


def outline_rows(ctx: context.Context, table: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """(k,) ``table`` rows the map outlines for the queue's first cards (``rows``): in All, a
    set card's every member, else ``rows`` as they are."""
    iv = issue_view(ctx.run_path)
    if iv is None or selected_issue(ctx) != ALL:
        return rows
    ids = table["sample_id"].to_numpy()
    outlined = iv.with_set_members(ids[rows])
    position = pd.Series(np.arange(len(ids)), index=ids)
    return position.reindex(outlined).dropna().to_numpy(dtype=np.int64)


def label_detector(ctx: context.Context) -> str | None:
    """The detector the run's label issue type ranked with (None without one)."""
    iv = issue_view(ctx.run_path)
    return None if iv is None else iv.label_detector


def queue_override(
    ctx: context.Context, table: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray] | None:
    """(order, keep) of the selected issue's queue over ``table``'s rows, or None for the
    label queue (the detector's or the label type's order: :func:`label_order`)."""
    issue = selected_issue(ctx)
    iv = issue_view(ctx.run_path)
    if iv is None or issue == LABEL:
        return None
    return issue_order(iv, issue, table["sample_id"].to_numpy())


# ---- the sidebar's queue length and score threshold in an issue queue -----------------------

LENGTH_BOX = "ctl_issue_length"  # the queue length an issue queue shows (not set by hand)
THRESHOLD_PREFIX = "ctl_min_score_"  # + issue type: the slider of its score threshold
THRESHOLDS = "issue_min_scores"  # issue type -> the threshold last set (kept over a switch)
THRESHOLD_OFF = "ctl_use_min_score_off"  # the threshold's toggle where no score orders the queue
NO_THRESHOLD = {
    ALL: "Off in All: its types' scores do not compare.",
    DUPLICATE: "Off in Duplicates: a set is reviewed whole.",
}


def issue_length_control(ctx: context.Context) -> bool:
    """Sidebar, in an issue queue other than Label issues: the queue's length, which is that
    type's flags (Duplicates: its sets), shown and not set (the review target is the Label
    issues queue's length). Returns whether it drew it (False in the label queue)."""
    issue = selected_issue(ctx)
    iv = issue_view(ctx.run_path)
    if iv is None or issue == LABEL:
        return False
    title = "All" if issue == ALL else TITLES.get(issue, issue.capitalize())
    sets = issue == DUPLICATE
    n = iv.n_sets() if sets else iv.n_flagged(issue)
    what = "its sets" if sets else "its flags"
    rule = queue_progress(iv, issue, pd.DataFrame({"sample_id": [], "status": []}))[2]
    st.session_state[LENGTH_BOX] = n
    st.number_input(
        f"Queue length ({title}: {what})",
        min_value=0,
        key=LENGTH_BOX,
        disabled=True,
        help=f"The {title} queue holds the {n:,} {'sets' if sets else 'samples'} it flags "
        f"({rule}). The review target sets the length of the Label issues queue only.",
    )
    return True


def issue_threshold_control(ctx: context.Context, issue: str) -> float | None:
    """Sidebar: the score threshold of ``issue``'s queue (the queue whose order the review
    page shows): a minimum of that type's score (the card's score), over its own range, by
    default the median of its flags; disabled with a one-line reason in All and Duplicates.
    Returns the minimum, or None when off."""
    iv = issue_view(ctx.run_path)
    found = None if iv is None or issue in NO_THRESHOLD else iv.score_range(issue)
    if found is None:
        reason = NO_THRESHOLD.get(issue, f"The {issue} issue type has no scores.")
        help_text = f"{reason} Pick one issue type to filter its queue by that type's score."
        st.toggle("Score threshold", value=False, key=THRESHOLD_OFF, disabled=True, help=help_text)
        st.caption(reason)
        return None
    on = st.toggle(
        "Score threshold",
        key=state.USE_MIN_SCORE,
        on_change=state.reset_page,
        help=f"Only samples whose {issue} issue type's score (the score on the card, this "
        "queue's order) is at least the minimum.",
    )
    low, high, middle = found
    if not on or high <= low:
        return None
    key = THRESHOLD_PREFIX + issue
    kept = st.session_state.setdefault(THRESHOLDS, {})
    current = st.session_state.get(key, kept.get(issue))
    st.session_state[key] = middle if current is None or not low <= current <= high else current
    value = st.slider(
        f"Minimum {issue} score",
        min_value=low,
        max_value=high,
        key=key,
        on_change=state.reset_page,
        help=f"The {issue} issue type's score; default {middle:.3f}, the median of its flags "
        "(the surer half of them).",
    )
    kept[issue] = float(value)
    return float(value)


def score_keep(
    ctx: context.Context, issue: str, table: pd.DataFrame, min_score: float
) -> np.ndarray:
    """(N,) bool over ``table``'s rows: ``issue``'s score at least ``min_score`` (a row it
    does not score is left out)."""
    iv = issue_view(ctx.run_path)
    if iv is None:
        return np.ones(len(table), dtype=bool)
    scores = iv.scores(issue, table["sample_id"].to_numpy())
    return np.nan_to_num(scores, nan=-np.inf) >= min_score


def issue_progress_html(ctx: context.Context, table: pd.DataFrame) -> tuple[str, str] | None:
    """(progress bar, folded rule) of the selected issue queue other than label, or None for
    the label queue (its header is the review target's): each issue queue states its own
    count and how its flag is decided."""
    issue = selected_issue(ctx)
    iv = issue_view(ctx.run_path)
    if iv is None or issue == LABEL:
        return None
    reviewed, n, rule = queue_progress(iv, issue, table)
    title = "All issues" if issue == ALL else TITLES.get(issue, issue.capitalize())
    width = 100.0 * reviewed / n if n else 100.0
    text = f"{reviewed:,} of {n:,} flagged reviewed · {title}: {n:,} flagged"
    bar = (
        f'<div class="ogad-progress" role="progressbar" aria-valuenow="{width:.0f}" '
        f'aria-valuemin="0" aria-valuemax="100"><div>{html.escape(text)}</div>'
        f'<div class="ogad-track"><div class="ogad-bar" style="width:{width:.1f}%"></div></div>'
        "</div>"
    )
    note = (
        '<details class="ogad-help ogad-progress"><summary>which are flagged?</summary>'
        f'<div class="ogad-target-note">{html.escape(f"{title}: {rule}.")}</div></details>'
    )
    return bar, note


#: the issue types whose reason a card shows whole, never cut to two lines: a leakage reason
#: names the held-out file the sample copies, the one thing its reviewer checks
WHOLE_REASONS = (LEAKAGE,)


def why_issue_html(ctx: context.Context, sample_id: int, skip: tuple[str, ...] = ()) -> str:
    """The card's issue line: each issue that flags the sample, with its reason (HTML), but
    the issues in ``skip`` (a card whose why line already gives the label evidence skips
    ``label`` and shows only what the label type adds: :meth:`IssueView.label_evidence`).
    Each reason is kept to two lines on the card, the whole text its tooltip; the reasons of
    :data:`WHOLE_REASONS` are shown whole (a long file path wraps)."""
    iv = issue_view(ctx.run_path)
    if iv is None:
        return ""
    lines: list[str | tuple[str, str]] = [
        w for w in iv.why(int(sample_id)) if not w.startswith(tuple(f"{i}: " for i in skip))
    ]
    evidence = iv.label_evidence(int(sample_id)) if LABEL in skip else ""
    if evidence:  # its whole reason is the line's tooltip
        full = f"{LABEL}: {iv.reason(LABEL, int(sample_id))}"
        lines.insert(0, (f"{LABEL}: {evidence}", full))
    if not lines:
        return ""
    return f'<div class="ogad-why ogad-issue">{"".join(map(_reason_html, lines))}</div>'


def held_out_copy_html(ctx: context.Context, kind: str, sample_id: int) -> str:
    """The held-out copy a leaking sample's card sets beside it (HTML: its image, for a data
    kind whose reason does not quote it whole); empty when the sample leaks nothing."""
    from dashboard.cards import card_kind  # cards shows this page's why line: import late

    iv = issue_view(ctx.run_path)
    ref = iv.held_out_ref(int(sample_id)) if iv is not None else ""
    return card_kind(kind).held_out_html(ctx.run_path, ref) if ref else ""


def _reason_html(line: str | tuple[str, str]) -> str:
    """One ``issue: reason`` line of a card (HTML, escaped): clamped to two lines with the
    whole text (a ``(line, whole text)`` pair: the second) as its tooltip, or whole
    (:data:`WHOLE_REASONS`; a path breaks after a ``/`` where it can, so that a file's name
    stays in one piece)."""
    line, whole = line if isinstance(line, tuple) else (line, line)
    text = html.escape(line)
    if line.startswith(tuple(f"{i}: " for i in WHOLE_REASONS)):
        return f'<div class="ogad-issue-line ogad-whole">{text.replace("/", "/<wbr>")}</div>'
    return f'<div class="ogad-issue-line" title="{html.escape(whole)}">{text}</div>'


# ---- duplicate sets ---------------------------------------------------------------------


NO_SETS = "The duplicate issue type found no duplicate sets in this run."
ALL_SETS_REVIEWED = (
    "No open duplicate sets. *Show reviewed samples* in the sidebar lists the reviewed ones."
)
SETS_UNFILTERED = (
    " The sidebar's label filters and search do not apply here: a set is reviewed whole."
)


def duplicate_section(ctx: context.Context, filtered: bool = False) -> None:
    """Every open duplicate set as one card: its members side by side (image or text, given
    label, file name, status), Keep one / Keep all, and a Relabel per member. ``filtered``: the
    sidebar narrows the other queues (its label filters or a search), which the sets ignore."""
    iv = issue_view(ctx.run_path)
    table, _ = ctx.table()
    unreviewed = table.loc[table["status"] == UNREVIEWED, "sample_id"].to_numpy()
    show_all = bool(st.session_state.get(state.SHOW_REVIEWED, False))
    sets = [] if iv is None else iv.duplicate_sets(None if show_all else unreviewed)
    if not sets:
        found = iv is not None and iv.duplicate_sets()
        st.success(ALL_SETS_REVIEWED if found else NO_SETS)
        return
    page = int(st.session_state.get(state.PAGE, 0))
    n_pages = (len(sets) + SETS_PER_PAGE - 1) // SETS_PER_PAGE
    page = min(max(page, 0), n_pages - 1)
    st.caption(
        f"{len(sets):,} duplicate set{'' if len(sets) == 1 else 's'} to review (conflicting "
        f"labels first) · page {page + 1} of "
        f"{n_pages}. Keep one drops the others (confirmed); Keep all keeps every member."
        + (SETS_UNFILTERED if filtered else "")
    )
    rows = table.set_index("sample_id")
    writable = ctx.store.writable()
    for members in sets[page * SETS_PER_PAGE : (page + 1) * SETS_PER_PAGE]:
        _set_card(ctx, rows, members, iv, writable)
    _set_pager(page, n_pages)


def set_card(ctx: context.Context, members: list[int]) -> None:
    """One duplicate set's card as on the Duplicates page (focus mode in All)."""
    table, _ = ctx.table()
    _set_card(
        ctx, table.set_index("sample_id"), members, issue_view(ctx.run_path), ctx.store.writable()
    )


def _set_card(
    ctx: context.Context,
    rows: pd.DataFrame,
    members: list[int],
    iv: IssueView | None,
    writable: bool,
) -> None:
    view = ctx.view
    names = view.label_names
    set_id = min(members)
    labels = sorted({names[int(v)] for v in rows.loc[members, "label"].to_numpy()})
    conflict = f" · labels differ: {' vs '.join(labels)}" if len(labels) > 1 else ""
    leaks = {sid: iv.leak(sid) if iv is not None else "" for sid in members}
    leaking = " · **leaks into the held-out split**" if any(leaks.values()) else ""
    how = _set_kind(iv, members)
    with st.container(border=True, key=keys.of(keys.DUPSET, set_id)):
        st.markdown(f"**Duplicate set #{set_id}** · {len(members)} samples{how}{conflict}{leaking}")
        cols = st.columns(max(len(members), 4))
        for col, sid in zip(cols, members, strict=False):
            with col:
                row = rows.loc[[sid]].iloc[0]
                _member(ctx, view.kind, row, sid, names, writable, leaks[sid])
        keep_key = f"{KEEP_PREFIX}{set_id}"
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.selectbox(
                "Keep",
                members,
                format_func=lambda s: f"keep #{s}",  # which member Keep one keeps
                key=keep_key,
                label_visibility="collapsed",
                width=130,
            )
            st.button(
                "Keep one",
                key=keys.of(keys.KEEP_ONE, set_id),
                icon=":material/filter_1:",
                on_click=keep_one,
                args=(ctx, members, keep_key),
                disabled=not writable,
                help="Keep the chosen member, drop the others (confirmed: keep = false).",
            )
            st.button(
                "Keep all",
                key=keys.of(keys.KEEP_ALL, set_id),
                icon=":material/done_all:",
                on_click=keep_all,
                args=(ctx, members),
                disabled=not writable,
                help="Keep every member (the unreviewed ones are rejected: not a problem; a "
                "relabeled member keeps its new label).",
            )


def _set_kind(iv: IssueView | None, members: list[int]) -> str:
    """ " · exact copies", " · near duplicates (aligned by a shift, rotation or rescale)": how
    the set's members matched (the kinds of its members, exact ones first); empty when unknown."""
    from dashboard.cards import md_escape  # cards imports this page: import late

    kinds = [iv.duplicate_kind(sid) for sid in members] if iv is not None else []
    found = sorted({k for k in kinds if k}, key=lambda k: (not k.startswith("exact"), k))
    plural = [
        k.replace("exact copy", "exact copies").replace("duplicate", "duplicates", 1) for k in found
    ]
    return f" · {md_escape(' and '.join(plural))}" if plural else ""


def _member(
    ctx: context.Context,
    kind: str,
    row: pd.Series,
    sid: int,
    names: list[str],
    writable: bool,
    leak: str = "",
) -> None:
    from dashboard.cards import card_kind  # cards shows this page's why line: import late

    ref = str(row["ref"])
    body, caption = card_kind(kind).member_html(ctx.run_path, ref, SET_IMAGE_PX)
    st.html(
        f'<div class="ogad-card" data-sid="{sid}">{body}{_member_labels_html(sid, row, names)}'
        f'<div class="ogad-why">{html.escape(caption)}</div>'
        + (f'<div class="ogad-why ogad-leak">leakage: {html.escape(leak)}</div>' if leak else "")
        + (held_out_copy_html(ctx, kind, sid) if leak else "")
        + "</div>"
    )
    key = f"{state.RELABEL_PREFIX}{sid}"
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        st.selectbox(
            "Relabel to",
            range(len(names)),
            index=int(row["label"]),
            format_func=names.__getitem__,
            key=key,
            label_visibility="collapsed",
        )
        st.button(
            "Relabel",
            key=keys.of(keys.DUP_RELABEL, sid),
            on_click=actions.decide,
            args=(ctx, sid, RELABELED, key),
            disabled=not writable,
        )


def _member_labels_html(sid: int, row: pd.Series, names: list[str]) -> str:
    """A set member's label line (HTML, escaped): its id, given label (with the relabel, if
    any), the model's prediction and its review status."""
    status = STATUS_TEXT.get(str(row["status"]), str(row["status"]))
    label = names[int(row["label"])]
    if str(row["status"]) == RELABELED and not pd.isna(row["new_label"]):
        label += f" → {names[int(row['new_label'])]}"
    return (
        f'<div class="ogad-labels">#{sid} · given <b>{html.escape(label)}</b>'
        f"{_predicted_html(row, names)} · {html.escape(status)}</div>"
    )


SET_CARD_IMAGE_PX = 72  # a member's image on a set's card in All (a grid card's width)


def set_card_html(ctx: context.Context, members: list[int], rows: pd.DataFrame) -> str:
    """The body of a duplicate set's card in All (HTML, escaped): what the set is (its
    Duplicates title) and each member small, with its given label, the model's prediction and
    its status. ``rows``: the run table with decisions, indexed by sample_id."""
    from dashboard.cards import card_kind  # cards shows this page's why line: import late

    iv = issue_view(ctx.run_path)
    names = ctx.view.label_names
    labels = sorted({names[int(v)] for v in rows.loc[members, "label"].to_numpy()})
    conflict = f" · labels differ: {' vs '.join(labels)}" if len(labels) > 1 else ""
    how = _set_kind(iv, members).replace("\\", "")  # plain text here, not Markdown
    title = f"Duplicate set #{min(members)} · {len(members)} samples{how}{conflict}"
    parts = [f'<div class="ogad-set-title"><b>{html.escape(title)}</b></div><div class="ogad-set">']
    for sid in members:
        row = rows.loc[[sid]].iloc[0]
        body, _ = card_kind(ctx.view.kind).member_html(
            ctx.run_path, str(row["ref"]), SET_CARD_IMAGE_PX
        )
        parts.append(
            f'<div class="ogad-member" data-sid="{sid}">{body}'
            f"{_member_labels_html(sid, row, names)}</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def _predicted_html(row: pd.Series, names: list[str]) -> str:
    """`` · predicted <b>7</b>`` for a set member (orange when it differs from the given label:
    in a set whose labels differ, the model's vote on which is right); '' without a prediction."""
    pred = row.get("pred")
    if pred is None or pd.isna(pred):
        return ""
    differs = ' class="ogad-diff"' if int(pred) != int(row["label"]) else ""
    return f" · predicted <b{differs}>{html.escape(names[int(pred)])}</b>"


def keep_one(ctx: context.Context, members: list[int], keep_key: str) -> None:
    """Keep the member of a duplicate set chosen in ``keep_key`` and drop the others, as one
    step (actions.keep_member)."""
    actions.keep_member(ctx, members, int(st.session_state.get(keep_key, members[0])))


def keep_all(ctx: context.Context, members: list[int]) -> None:
    """Keep every member of a duplicate set (actions.keep_all_members)."""
    actions.keep_all_members(ctx, members)


def _set_pager(page: int, n_pages: int) -> None:
    if n_pages <= 1:
        return
    with st.container(horizontal=True, gap="small"):
        st.button(
            "Previous sets",
            disabled=page == 0,
            on_click=actions.go_to_page,
            args=(page - 1,),
        )
        st.button(
            "Next sets",
            disabled=page >= n_pages - 1,
            on_click=actions.go_to_page,
            args=(page + 1,),
        )


# ---- the map of the model's features ---------------------------------------------------------

MAP_SPACE = "ctl_map_space"  # "gradients" | "features"
MAP_SPACES = {"gradients": "Gradients", "features": "Model features"}


def map_space(ctx: context.Context) -> str:
    """The map's space picked in the sidebar (``features`` only when the run has that map)."""
    if not RunDir(ctx.run_path).features_map_path.is_file():
        return "gradients"
    return str(st.session_state.get(MAP_SPACE, "gradients"))


def map_space_control(ctx: context.Context) -> None:
    """Sidebar: draw the map from the gradients or from the model's features (when the run has
    map_features.parquet, made by ``ogad issues DIR --features-map``)."""
    if not RunDir(ctx.run_path).features_map_path.is_file():
        return
    st.radio(
        "Map of",
        list(MAP_SPACES),
        format_func=MAP_SPACES.__getitem__,
        key=MAP_SPACE,
        horizontal=True,
        on_change=state.clear_map_selection,
        help="The gradients (the detectors' space) or the model's penultimate features, where "
        "clusters of outliers and duplicates show.",
    )


@st.cache_resource(max_entries=4, show_spinner="Drawing the map…")
def _features_layer(
    run_path: str,
    stamp: tuple,
    color_by: str,
    detector: str | None,
    version: int,
    first: tuple[int, ...] | None,
) -> MapLayer:
    import dataclasses

    from dashboard.map_view import build_map

    view = cache.run_view(run_path)
    coords = pd.read_parquet(RunDir(run_path).features_map_path)[["sample_id", "x", "y"]]
    table = view.table.drop(columns=["x", "y"]).merge(coords, on="sample_id", how="left")
    moved = dataclasses.replace(view, table=table, orders={})
    status = cache.table_with_decisions(run_path)[0]["status"] if color_by == "status" else None
    rows = None if first is None else np.asarray(first, dtype=np.int64)  # the same row order
    return build_map(moved, color_by=color_by, detector=detector, status=status, first=rows)


def features_layer(
    run_path: str,
    stamp: tuple,
    color_by: str,
    detector: str | None,
    version: int,
    first: tuple[int, ...] | None = None,
) -> MapLayer | None:
    """The map drawn from the model's features (a MapLayer), or None for the gradient map;
    ``first`` as in :func:`dashboard.cache.map_layer`."""
    if map_space(context.Context(run_path)) != "features":
        return None
    return _features_layer(run_path, stamp, color_by, detector, version, first)


# ---- Summary ------------------------------------------------------------------------------


def health_section(ctx: context.Context) -> None:
    """Summary page: class balance and per-class health, and the issue counts."""
    view = ctx.view
    iv = issue_view(ctx.run_path)
    st.subheader("Class health")
    health = class_health(view.table, view.label_names, iv)
    frame_table(
        health.rename(columns={"accuracy": "model agrees"}),
        key=f"{keys.TABLE}class_health",
        formats={"share": BAR, "model agrees": PERCENT, "est. noise": PERCENT},
    )
    st.caption(
        "model agrees: the share of the class the model predicts as its given label; est. "
        "noise: the share confident learning assigns to another class."
    )
    if iv is not None:
        st.caption(" · ".join(iv.options().values()))

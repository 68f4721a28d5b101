"""The review page: sidebar controls, the gradient map, the queue of cards (grid or focus mode),
bulk actions, keyboard shortcuts, the progress toward the review target."""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import actions, cache, context, keys, page_issues, review_aids, shortcuts, state
from dashboard.cards import (
    CardContext,
    card_kind,
    card_payload,
    install_style,
    md_escape,
    md_text,
    render_card,
    render_peek,
)
from dashboard.deck_component import card_deck
from dashboard.filters import Progress, filter_mask, review_progress, share_text
from dashboard.map_component import gradient_map
from dashboard.map_view import (
    COLOR_BY_LABELS,
    MAP_HEIGHT,
    TOP_LAYER_MAX,
    MapLayer,
    MapSelection,
    read_selection,
)
from dashboard.run_view import (
    QueueRows,
    RunView,
    order_by_rank,
    page_of,
    queue_rows,
    run_files_stamp,
)
from ogad_core.review.store import CONFIRMED, REJECTED, UNREVIEWED

MAP_COLUMNS = (4, 8)  # map | queue widths
PER_PAGE_CHOICES = (4, 6, 8, 9, 12, 18, 24, 36)


@dataclass(frozen=True)
class Controls:
    """The queue options chosen in the sidebar."""

    detector: str | None
    color_by: str
    classes: list[int]
    top_k: int | None
    min_score: float | None
    show_reviewed: bool
    per_page: int
    show_map: bool
    pred_classes: list[int]
    disagree: bool
    search: str
    rerank: bool
    focus_mode: bool
    drill: bool = False  # a Summary cell's samples, all of them (not the queue's top k)


def _on_detector_change() -> None:
    st.session_state[state.MIN_SCORE] = None
    state.reset_page()


def _review_length(ctx: context.Context, detector: str | None) -> Any:
    """The queue length (review_aids.review_length): from the label issue type's flags when
    the Label issues queue follows its order (the decisions on samples only another issue type
    flags left out), else from the review target."""
    label = page_issues.label_order(ctx, detector)
    if label is None:
        return review_aids.review_length(ctx, detector)
    left_out = (label.key, label.elsewhere_ids)
    return review_aids.review_length(ctx, detector, label.n_flagged, left_out)


def _detector_control(view: RunView) -> str | None:
    """The detector selectbox; the advice on the default in its help and a short caption."""
    if not view.detectors:
        st.caption("No detector scores yet: the queue is ordered by loss.")
        return None
    if st.session_state.get(state.DETECTOR) not in view.detectors:
        st.session_state[state.DETECTOR] = review_aids.default_detector(view.detectors)
    advice = review_aids.detector_advice()
    help_text = "Whose ranking orders the queue (rank 1 = most suspicious)."
    if advice is not None:
        help_text += f" Default {advice[0]}: {advice[1]}"
    detector = st.selectbox(
        "Detector",
        view.detectors,
        key=state.DETECTOR,
        on_change=_on_detector_change,
        help=help_text,
    )
    if advice is not None and advice[0] in view.detectors:
        paper = (
            " · the paper's `iforest` is in this list"
            if "iforest" in view.detectors and advice[0] != "iforest"
            else ""
        )
        st.caption(
            f"Default `{md_escape(advice[0])}`: it finds flipped labels best on the project's "
            f"benchmarks (details: **?** above){paper}"
        )
    return detector


def _queue_length_control(ctx: context.Context, detector: str | None) -> int:
    """The queue length: the review target (extended while decisions keep confirming flags)
    until the reviewer sets another. In another issue queue: that queue's length (its flags),
    shown only; the Label issues queue's length is kept for the way back."""
    if page_issues.issue_length_control(ctx):
        return int(st.session_state.get(state.TOP_K) or 0)
    view = ctx.view
    target = review_aids.review_target(ctx, detector)
    length = _review_length(ctx, detector)
    if length is not None and st.session_state.get(state.TOP_K_AUTO, True):
        st.session_state[state.TOP_K] = int(min(max(length.n, 0), view.n_samples))
    help_text = "The best-ranked samples to review; 0 = all."
    if target is not None:
        help_text += (
            f" Default: the {target.describe(more=_noise_text(target, view.n_samples))}, and "
            "more while your latest decisions keep confirming flags."
        )
    return st.number_input(
        "Queue length (top-k by rank, 0 = all)",
        min_value=0,
        max_value=max(view.n_samples, 1),
        step=50,
        key=state.TOP_K,
        on_change=state.top_k_set_by_hand,
        help=help_text,
    )


def _min_score_control(ctx: context.Context, detector: str | None) -> float | None:
    """The score threshold: on the score of the issue type whose order the queue shows (the
    label type's, another type's; none in All and Duplicates), else on the detector's."""
    issue = page_issues.queue_issue(ctx, detector)
    if issue is not None:
        return page_issues.issue_threshold_control(ctx, issue)
    view = ctx.view
    if detector is None:
        return None
    scores = view.table[f"{detector}_score"].to_numpy(dtype=float)
    lo, hi = float(np.nanmin(scores)), float(np.nanmax(scores))
    if not st.toggle("Score threshold", key=state.USE_MIN_SCORE, on_change=state.reset_page):
        return None
    current = st.session_state.get(state.MIN_SCORE)
    if current is None or not lo <= current <= hi:
        st.session_state[state.MIN_SCORE] = float(np.nanquantile(scores, 0.9))
    if hi <= lo:
        return None
    return st.slider(
        "Minimum score",
        min_value=lo,
        max_value=hi,
        key=state.MIN_SCORE,
        on_change=state.reset_page,
    )


def _filter_controls(view: RunView) -> tuple[list[str], list[str], bool, str]:
    """(given classes, predicted classes, given != predicted, search text)."""
    chosen = st.multiselect(
        "Classes (given label)",
        view.label_names,
        key=state.CLASSES,
        on_change=state.reset_page,
        placeholder="All classes",
    )
    predicted = st.multiselect(
        "Predicted label",
        view.label_names,
        key=state.PRED_CLASSES,
        on_change=state.reset_page,
        placeholder="All predictions",
    )
    disagree = st.toggle(
        "Given ≠ predicted only",
        key=state.DISAGREE,
        on_change=state.reset_page,
        help="Only samples the model predicts as another class than their label.",
    )
    search = st.text_input(
        "Search",
        key=state.SEARCH,
        on_change=state.reset_page,
        placeholder="sample id, file name or text",
        help="A sample id (12 or #12), or part of a file name or of the text (any case).",
    )
    return chosen, predicted, bool(disagree), str(search)


def _rerank_control(ctx: context.Context, detector: str) -> bool:
    """The re-ranking toggle. In the label issue type's order it has its own setting, off at
    first: on the issue-type mixes re-ranking lowered that order (docs/benchmarks.md, "Label
    issues: the detector's order or the label type's"); in a detector's order it is on."""
    if page_issues.label_order_applies(ctx, detector):
        return st.toggle(
            "Re-rank from my decisions",
            key=state.RERANK_LABEL,
            help="Reorder the unreviewed label queue by what the decisions so far teach "
            "(confirmed / relabeled = bad, rejected = fine). Off: the label issue type's "
            "order, which re-ranking did not improve on the measured mixes of bad samples.",
        )
    return st.toggle(
        "Re-rank from my decisions",
        key=state.RERANK,
        help="Reorder the unreviewed queue by what the decisions so far teach about the "
        "gradient space (confirmed / relabeled = bad, rejected = fine). Off: the "
        "detector's order.",
    )


def sidebar_controls(ctx: context.Context) -> Controls:
    """Draw the queue controls in the sidebar and return their values."""
    view = ctx.view
    with st.sidebar:
        st.subheader("Queue")
        detector = _detector_control(view)
        rerank = False
        label_queue = page_issues.other_queue_order(ctx) is None  # others keep their order
        if detector is not None and label_queue and review_aids.rerank_available(ctx):
            rerank = _rerank_control(ctx, detector)
        top_k = _queue_length_control(ctx, detector)
        chosen, predicted, disagree, search = _filter_controls(view)
        min_score = _min_score_control(ctx, detector)
        show_reviewed = st.toggle(
            "Show reviewed samples", key=state.SHOW_REVIEWED, on_change=state.reset_page
        )
        focus_mode = st.toggle(
            "Focus mode",
            key=state.FOCUS_MODE,
            help="One large card with why it is flagged and its nearest neighbours.",
        )
        per_page = st.selectbox(
            "Cards per page", PER_PAGE_CHOICES, key=state.PER_PAGE, on_change=state.reset_page
        )
        st.subheader("Map")
        show_map = st.toggle("Show map", key=state.SHOW_MAP)
        color_by = st.selectbox(
            "Colour by",
            list(COLOR_BY_LABELS),
            format_func=COLOR_BY_LABELS.__getitem__,
            key=state.COLOR_BY,
            disabled=not view.has_map,
        )
        page_issues.map_space_control(ctx)
    names = view.label_names
    return Controls(
        detector=detector,
        color_by=color_by,
        classes=[names.index(c) for c in chosen if c in names],
        top_k=int(top_k) or None,
        min_score=min_score,
        show_reviewed=bool(show_reviewed),
        per_page=int(per_page),
        show_map=bool(show_map),
        pred_classes=[names.index(c) for c in predicted if c in names],
        disagree=disagree,
        search=search,
        rerank=bool(rerank),
        focus_mode=bool(focus_mode),
        drill=st.session_state.get(state.DRILL) is not None,
    )


def _map_section(ctx: context.Context, controls: Controls) -> list[int] | None:
    """Draw the map; returns the sample ids selected or clicked on it (None: no selection)."""
    if not ctx.view.has_map:
        return None  # the page's notes say how to make one
    stamp = run_files_stamp(ctx.run_path)
    version = ctx.store.version() if controls.color_by == "status" else -1
    first, cards = _outlined(ctx, controls)  # the map's top: the queue's first cards
    args = (ctx.run_path, stamp, controls.color_by, controls.detector, version, first)
    layer = page_issues.features_layer(*args) or cache.map_layer(*args)
    st.markdown(
        "##### " + ("Feature map" if page_issues.map_space(ctx) == "features" else "Gradient map")
    )
    st.session_state[state.MAP_VERSION] = version
    key = state.map_key()
    before, view = _map_state(key)
    picked = read_selection(before, layer)
    top_words, with_members = _top_words(layer, cards)
    data = {
        **layer.payload,
        "selection": picked.shape,
        "picked": picked.ids[0] if picked.kind == "click" and picked.ids else None,
        "detail": layer.detail(view) if layer.detail is not None else None,
        "height": MAP_HEIGHT,
    }
    if with_members and data.get("top_text"):  # the legend counts the cards too
        data["top_text"] = f"the queue's first {top_words}"
    value, _ = gradient_map(data, key=key, on_select=state.reset_page)
    if value != before:  # the map's state was not in the session yet
        picked = read_selection(value, layer)
    _map_caption(layer, picked, top_words)
    return picked.ids


def _outlined(ctx: context.Context, controls: Controls) -> tuple[tuple[int, ...], np.ndarray]:
    """(the table rows of the queue's first cards as the reviewer sees them, its order, the
    sidebar's filters, a search; not a map selection, which the outline helps to draw: the
    map outlines them and draws them on top; in All with a duplicate set's every member),
    (the cards' own sample ids among them)."""
    table, queue, _ = _queue_rows(ctx, controls, None)
    cards = queue.rows[:TOP_LAYER_MAX]
    rows = page_issues.outline_rows(ctx, table, cards)[:TOP_LAYER_MAX]
    return tuple(int(row) for row in rows), table["sample_id"].to_numpy()[cards]


def _top_words(layer: MapLayer, cards: np.ndarray) -> tuple[str, bool]:
    """(how many the map outlines: ``12 cards``, or where a duplicate set's members are
    outlined beside its card, in All, ``12 cards (13 samples)``; whether members are)."""
    top = layer.drawn_ids[len(layer.drawn_ids) - layer.n_top :]
    n_cards = int(np.isin(top, cards).sum())
    words = f"{n_cards:,} card{'' if n_cards == 1 else 's'}"
    if n_cards == layer.n_top:
        return words, False
    return f"{words} ({layer.n_top:,} samples)", True


def _map_state(key: str) -> tuple[Any, Any]:
    """The map component's (``selection``, ``view``) state as the browser last reported it."""
    value: Any = st.session_state.get(key)
    if not hasattr(value, "get"):
        return None, None
    return value.get("selection"), value.get("view")


OUTLINE_HELP = (
    "The outline is drawn with the map: after decisions it still marks the cards decided "
    "since, until the map is redrawn (a change in the sidebar, a reload)."
)


def _map_caption(layer: MapLayer, picked: MapSelection, top_words: str) -> None:
    """What the map shows (the queue's first cards outlined), or what is selected on it (with
    a button to clear it)."""
    if picked.kind is not None:
        ids = picked.ids or []
        if picked.kind == "click" and len(ids) == 1:
            text = f"#{ids[0]} picked on the map: the queue below shows its card."
        else:
            text = f"{len(ids):,} samples selected on the map: the queue shows these."
        cols = st.columns([3, 1], vertical_alignment="center")
        cols[0].caption(text)
        cols[1].button("Clear selection", on_click=state.clear_map_selection)
        return
    pick = (
        "Pick *Box* or *Lasso* above the map to review just those samples; click a point to "
        "open its card."
    )
    if layer.n_top == 0:
        top = "No card is in the queue with these filters: nothing is outlined."
    else:
        top = (
            f"The queue's first {top_words} (in its order, after the sidebar's "
            "filters) are outlined and drawn on top."
        )
    if layer.raster:
        top = (
            f"All {layer.n_drawn:,} samples drawn as a density image, {layer.n_points:,} as "
            f"points (the queue's first, then the detector's top-ranked; zoom in for a sharper "
            f"image). {top}"
        )
    st.caption(f"{top} {pick}", help=OUTLINE_HELP)


def _queue_rows(
    ctx: context.Context, controls: Controls, selected: list[int] | None
) -> tuple[pd.DataFrame, QueueRows, int]:
    """(the table with decisions, the queue as row positions, the decisions version it shows).
    The queue is never built as a DataFrame: only a page's rows are read."""
    view = ctx.view
    table, version = ctx.table()
    label = page_issues.label_order(ctx, controls.detector)  # the label type's order
    order = None if label is None else label.order
    if controls.rerank and controls.detector is not None:
        base = None if label is None else (label.key, label.scores)
        ranked = review_aids.reranked(table, ctx, controls.detector, version, base)
        if ranked is not table:
            rank_column = ranked[f"{controls.detector}_rank"].to_numpy()
            order = order_by_rank(rank_column, table["sample_id"].to_numpy())
            if label is not None:  # what another issue type explains stays below the rest
                order = label.after_the_rest(order)
    keep = filter_mask(
        table,
        pred_classes=controls.pred_classes,
        disagree=controls.disagree,
        search=controls.search,
    )
    min_score = controls.min_score
    scored = page_issues.queue_issue(ctx, controls.detector)  # the threshold's score
    if scored is not None and min_score is not None:
        above = page_issues.score_keep(ctx, scored, table, min_score)
        keep, min_score = (above if keep is None else keep & above), None
    issue = page_issues.queue_override(ctx, table)  # another issue type's queue
    if issue is not None:
        order, keep = issue[0], issue[1] if keep is None else issue[1] & keep
    # a map selection, a search, a drill-down or an issue queue looks at every sample, not
    # only the queue's top k
    narrowed = (
        selected is not None or bool(controls.search.strip()) or controls.drill or issue is not None
    )
    top_k = controls.top_k
    length = _review_length(ctx, controls.detector)
    if length is not None and st.session_state.get(state.TOP_K_AUTO, True):
        top_k = length.n  # a decision reruns only this fragment: the length follows it here
    rows = queue_rows(
        view,
        table,
        detector=controls.detector,
        classes=controls.classes,
        top_k=None if narrowed else top_k,
        min_score=min_score,
        selected_ids=selected,
        show_reviewed=controls.show_reviewed,
        order=order,
        keep=keep,
        undecided=page_issues.open_set_rows(ctx, table),
    )
    return table, rows, version


def _message() -> str:
    """The last action's result as HTML for the queue header (a toast would cover the
    buttons); an error is drawn as an alert instead."""
    message = state.take_flash()
    if message is None:
        return ""
    level, text = message
    if level == "error":
        st.error(md_text(text), icon=":material/error:")  # labels and names stay literal
        return ""
    if level == "success":
        return (
            f'<div class="ogad-flash"><span class="ogad-ok">✓</span> {html.escape(text)} · '
            "<b>U</b> undoes it</div>"
        )
    if level == "undone":  # an undo is not undone by U (U takes back the step before)
        return f'<div class="ogad-flash"><span class="ogad-ok">↺</span> {html.escape(text)}</div>'

    return f'<div class="ogad-flash">{html.escape(text)}</div>'


def _progress(ctx: context.Context, controls: Controls, table: pd.DataFrame) -> tuple[str, str]:
    """(the progress bar toward the review target, the target as an estimate with its range
    and how many flagged samples are likely left; why the queue is as long as it is, folded)
    as HTML."""
    own = page_issues.issue_progress_html(ctx, table)
    if own is not None:  # another issue queue: its own count and rule, not the label target
        return own
    target = review_aids.review_target(ctx, controls.detector)
    length = _review_length(ctx, controls.detector)
    if target is None or length is None or target.n_target <= 0:
        return "", ""
    prog, expected, goal_text = _goal(ctx, controls, table, target, length)
    flags = "" if page_issues.label_order(ctx, controls.detector) is None else LABEL_FLAGS_NOTE
    left = (
        f"about {prog.remaining_flagged:,} flagged samples left to find"
        if prog.found < expected
        else f"{prog.found:,} found, more than the {expected:,} estimated: the estimate is low"
    )
    text = (
        f"{prog.reviewed:,} of {prog.n_target:,} reviewed ({share_text(prog.of_target)}) · "
        f"{goal_text} · {left}"
    )
    width = min(max(float(prog.of_target), 0.0), 1.0) * 100
    why = html.escape(f"Queue length: {length.reason}. {flags}{target.note}")
    summary = "why this many?" if not length.extended else "why more than the estimate?"
    bar = (
        f'<div class="ogad-progress" role="progressbar" aria-valuenow="{width:.0f}" '
        f'aria-valuemin="0" aria-valuemax="100"><div>{html.escape(text)}</div>'
        f'<div class="ogad-track"><div class="ogad-bar" style="width:{width:.1f}%"></div></div>'
        "</div>"
    )
    note = (
        f'<details class="ogad-help ogad-progress"><summary>{summary}</summary>'
        f'<div class="ogad-target-note">{why}</div></details>'
    )
    return bar, note


def _noise_text(target: Any, n_samples: int) -> str:
    """``; the estimated noise rate 6.7% x 1,797, confident_joint``: how the target was
    estimated, for the Queue length tooltip."""
    return f"; the estimated noise rate {target.noise_rate:.1%} x {n_samples:,}, {target.method}"


def _goal(
    ctx: context.Context, controls: Controls, table: pd.DataFrame, target: Any, length: Any
) -> tuple[Progress, int, str]:
    """(the progress toward the queue's goal, the number of bad samples expected, the goal in
    words). The Label issues queue in the label type's order counts toward its flags (the
    review target less the samples another issue type explains, whose decisions are left out);
    else toward the review target, every decision counted."""
    label = page_issues.label_order(ctx, controls.detector)
    if label is None:
        goal = max(length.n, target.n_target)
        prog = review_progress(table, goal, target.noise_rate)
        noise = f"; estimated noise {target.noise_rate:.1%}, {target.method}"
        return prog, round(target.noise_rate * len(table)), target.describe(more=noise)
    goal = max(length.n, label.n_flagged)
    counted = table[~label.elsewhere]  # decided in another issue type's queue: left out
    prog = review_progress(counted, goal, 0.0)
    prog = dataclasses.replace(prog, remaining_flagged=max(0, label.n_flagged - prog.found))
    text = (
        f"Label issues: {label.n_flagged:,} flagged = {target.describe()} less those other "
        "issue types explain"
    )
    return prog, label.n_flagged, text


BULK_NAMED = 12  # the Bulk menu names this many of the cards it acts on


def _named_ids(ids: list[int]) -> str:
    """``#3, #17, #40`` (and how many more) for the Bulk menu."""
    shown = ", ".join(f"#{i}" for i in ids[:BULK_NAMED])
    more = len(ids) - BULK_NAMED
    return shown + (f" and {more:,} more" if more > 0 else "")


def _bulk_actions(
    ctx: context.Context, page_ids: list[int], selection_ids: list[int] | None
) -> None:
    """Confirm / Reject every unreviewed card of the page or of the map selection at once. The
    menu names the cards it acts on and closes after an action (a new menu key per action), so
    it never offers the next, unseen page."""
    epoch = int(st.session_state.get(state.BULK_EPOCH, 0))
    with st.popover("Bulk", icon=":material/done_all:", key=keys.of(keys.BULK_MENU, epoch)):
        scope, ids = "this page", page_ids
        if selection_ids is not None:
            choice = st.radio(
                "Apply to",
                ("page", "selection"),
                format_func=lambda s: (
                    f"this page ({len(page_ids):,})"
                    if s == "page"
                    else f"the map selection ({len(selection_ids):,})"
                ),
                key=state.BULK_SCOPE,
            )
            if choice == "selection":
                scope, ids = "map selection", selection_ids
        st.caption(
            f"{len(ids):,} unreviewed samples: {_named_ids(ids) or 'none'} · one Undo takes "
            "the whole action back."
        )
        for decision, label in ((CONFIRMED, "Confirm all"), (REJECTED, "Reject all")):
            st.button(
                f"{label} {len(ids):,}",
                key=f"{keys.BULK}{decision}",
                type="primary" if decision == CONFIRMED else "secondary",
                width="stretch",
                disabled=not ids,
                on_click=actions.decide_all,
                args=(ctx, ids, decision, scope),
            )


def _order_text(controls: Controls, table: pd.DataFrame, ctx: context.Context) -> tuple[str, str]:
    """(what orders the queue, a longer note on re-ranking for the tooltip, or '')."""
    other = page_issues.other_queue_order(ctx)
    if other is not None:  # another issue type's queue: its own order, never re-ranked
        return other, page_issues.queue_order_note(page_issues.selected_issue(ctx))
    order = _base_order_text(ctx, controls.detector)
    hint = _label_order_hint(ctx, controls.detector)  # in the tooltip: the line stays short
    note = LABEL_ORDER_NOTE if order == LABEL_ORDER_TEXT else ""
    if not (controls.rerank and controls.detector):
        return order, hint + note
    if not review_aids.rerank_learning(table):
        return order, hint + (
            f"Re-ranking starts once {review_aids.MIN_EACH} are confirmed or relabeled and "
            f"{review_aids.MIN_EACH} rejected."
        )
    if not review_aids.evidence_ready(ctx):  # a big run's features still being built
        return order, hint + "Re-ranking starts when every sample's neighbours are found."
    return order + ", re-ranked from the decisions", hint + note


LABEL_ORDER_TEXT = "the label issue type's rank"
LABEL_FLAGS_NOTE = (
    "The label issue type flags the review target less the samples another issue type "
    "explains (corrupt, outlier, a duplicate set whose labels differ: reviewed in those queues, "
    "their decisions not counted here). "
)
LABEL_ORDER_NOTE = (
    "The label issue type's order: the detector's score (the loss: joined by the neighbours' "
    "label vote where that vote is about as accurate as the model), "
    "samples the model gives another class first (likelier wrong where that pair of classes is "
    "often confused), samples another issue type explains (corrupt, outlier, a duplicate set "
    "whose labels differ) last. Another detector in the sidebar orders this queue by its rank."
)


def _base_order_text(ctx: context.Context, detector: str | None) -> str:
    """What orders the queue before re-ranking: the label issue type's rank (the Label issues
    queue with its detector chosen), else the detector's."""
    if detector is None:
        return "loss"
    if page_issues.label_order(ctx, detector) is not None:
        return LABEL_ORDER_TEXT
    return f"{detector} rank"


def _label_order_hint(ctx: context.Context, detector: str | None) -> str:
    """Which detector gives the label issue type's order, when the Label issues queue shows
    another detector's (the header's tooltip); '' otherwise."""
    own = page_issues.label_detector(ctx)
    if detector is None or own is None or own == detector:
        return ""
    if page_issues.selected_issue(ctx) != page_issues.LABEL:
        return ""
    return f"Choose {own} in the sidebar for the label issue type's order. "


def _header(
    ctx: context.Context,
    controls: Controls,
    table: pd.DataFrame,
    counts: tuple[int, int, int],
    bulk_ids: tuple[list[int], list[int] | None],
) -> None:
    """Title, progress, message, Undo and Bulk buttons. ``table``: the run table with the
    decisions; ``counts`` = (queue, reviewed, N).

    The text parts are two HTML elements (each element drawn costs browser time on every
    decision)."""
    n_queue, reviewed, n_samples = counts
    what = "to review" if not controls.show_reviewed else "in the queue"
    head = st.container(
        horizontal=True, gap="small", vertical_alignment="center", key=keys.QUEUE_HEAD
    )
    with head:  # the text wraps inside its box: Bulk and Undo stay on the title's row
        order, why = _order_text(controls, table, ctx)
        tip = f' title="{html.escape(why)}"' if why else ""
        st.html(
            f'<div class="ogad-title">Review queue · {n_queue:,} {what}</div>'
            f'<div class="ogad-sub"{tip}>{reviewed:,} of {n_samples:,} reviewed · ordered by '
            f"{html.escape(order)}</div>",
            width="stretch",
        )
        _bulk_actions(ctx, *bulk_ids)
        _undo_button(ctx)
    progress, why = _progress(ctx, controls, table)
    legend = (
        f'<details class="ogad-help ogad-sub"><summary>keys</summary>{shortcuts.LEGEND_HTML}'
        "</details>"
    )
    st.html(progress + _message() + f'<div class="ogad-helps">{why} {legend}</div>')


def _undo_button(ctx: context.Context) -> None:
    """Undo the reviewer's latest step (key U)."""
    st.button(
        "Undo",
        key=keys.UNDO,
        icon=":material/undo:",
        help=f"Undo {state.reviewer()}'s latest decision or bulk action (also from an "
        "earlier session). Key: U",
        on_click=actions.undo,
        args=(ctx,),
        disabled=not ctx.store.can_undo(reviewer=state.reviewer()),
    )


DUPLICATES_HINT = "Keep one, Keep all and a member's Relabel are undone by Undo (key U)."


def _duplicates_head(ctx: context.Context) -> None:
    """Above the duplicate sets: what the last Keep one, Keep all or Relabel did, and Undo."""
    head = st.container(
        horizontal=True, gap="small", vertical_alignment="center", key=keys.QUEUE_HEAD
    )
    with head:
        message = _message() or f'<div class="ogad-sub">{html.escape(DUPLICATES_HINT)}</div>'
        st.html(message, width="stretch")
        _undo_button(ctx)


def _large_card(ctx: CardContext, row, place: tuple[int, int]) -> None:
    """Focus mode's card: large, with the full explanation and the nearest neighbours; in All
    a duplicate set's card is the Duplicates page's (Keep one / Keep all / Relabel each)."""
    members = (
        page_issues.set_members(ctx.run, int(row.sample_id)) if ctx.queue == page_issues.ALL else []
    )
    if members:
        page_issues.set_card(ctx.run, members)
        return
    why = review_aids.explanation(ctx.run, int(row.sample_id))
    suggested = None if why is None else int(why.suggested_label)
    render_card(ctx, row, explanation=why, suggested=suggested, large=True, place=place)


def _restored_focus() -> dict[str, int] | None:
    """The card the latest Undo brought back ({"sid", "nonce"}): the keys' outline moves to it
    once (dashboard.shortcuts)."""
    restored = st.session_state.get(state.RESTORED)
    if not restored:
        return None
    return {"sid": int(restored[0]), "nonce": int(restored[1])}


def _grid(ctx: CardContext, rows: pd.DataFrame, version: int, places: tuple[int, int]) -> None:
    """The page's cards as one card-deck element (dashboard.deck_component): a decision redraws
    one element, not the forty or so of native cards. ``version``: the decision store's version
    the cards show (the keys wait for a newer one after a decision); ``places``: (0-based place
    of the page's first card in the queue, queue length)."""
    whys = review_aids.cards_why(ctx.run, rows["sample_id"].astype(int).tolist())
    first, total = places
    cards = []
    sids = rows["sample_id"].astype(int)
    for i, (row, sid) in enumerate(zip(rows.itertuples(index=False), sids, strict=True)):
        why = whys.get(int(sid))
        suggested = None if why is None else int(why.suggested_label)
        cards.append(card_payload(ctx, row, why, suggested, (first + i + 1, total)))
    data = {
        "cards": cards,
        "label_names": [str(name) for name in ctx.label_names],
        "columns": card_kind(ctx.kind).columns,  # cards per row at most
        "writable": ctx.writable,
        "version": int(version),
        "focus": _restored_focus(),
    }
    sets = partial(page_issues.set_members, ctx.run)  # a set card's Keep one / Keep all
    decided = partial(actions.decide_from_deck, ctx.run, state.DECK, sets)
    card_deck(data, key=state.DECK, on_decision=decided)


def _rows_at(queue: QueueRows, start: int, stop: int) -> pd.DataFrame:
    """Rows ``start:stop`` of the queue as a DataFrame (queue order)."""
    return queue.table.iloc[queue.rows[max(0, start) : stop]]


def _focus(ctx: CardContext, queue: QueueRows) -> None:
    """Focus mode: the focused card large, the previous and next ones as small previews."""
    index = min(max(0, int(st.session_state.get(state.FOCUS, 0))), len(queue) - 1)
    restored = st.session_state.get(state.RESTORED)
    if restored and restored[2]:  # an Undo brought a card back: show it
        found = queue.position_of(int(restored[0]))
        index = index if found is None else found
        st.session_state[state.RESTORED] = (restored[0], restored[1], False)
    st.session_state[state.FOCUS] = index
    left, middle, right = st.columns([1, 3, 1], gap="medium")
    with left:
        st.button(
            "Previous",
            key=keys.FOCUS_PREV,
            icon=":material/chevron_left:",
            width="stretch",
            disabled=index == 0,
            on_click=actions.move_focus,
            args=(index - 1,),
            help="Key: K",
        )
        if index > 0:
            render_peek(ctx, _rows_at(queue, index - 1, index).iloc[0], "previous")
    with right:
        st.button(
            "Next",
            key=keys.FOCUS_NEXT,
            icon=":material/chevron_right:",
            icon_position="right",
            width="stretch",
            disabled=index >= len(queue) - 1,
            on_click=actions.move_focus,
            args=(index + 1,),
            help="Key: J",
        )
        if index + 1 < len(queue):
            render_peek(ctx, _rows_at(queue, index + 1, index + 2).iloc[0], "next")
    with middle:
        row = next(_rows_at(queue, index, index + 1).itertuples(index=False))
        _large_card(ctx, row, (index + 1, len(queue)))


def _bulk_ids(
    queue: QueueRows, rows: pd.DataFrame, controls: Controls, selected: list[int] | None
) -> tuple[list[int], list[int] | None]:
    """(the unreviewed ids of the page, or of the focused card in focus mode; those of the map
    selection's queue, None without a selection): what the Bulk buttons decide."""
    page_ids = rows.loc[rows["status"] == UNREVIEWED, "sample_id"].astype(int).tolist()
    if controls.focus_mode and len(queue):
        index = min(int(st.session_state.get(state.FOCUS, 0)), len(queue) - 1)
        focused = _rows_at(queue, index, index + 1)
        page_ids = focused.loc[focused["status"] == UNREVIEWED, "sample_id"].astype(int).tolist()
    if selected is None:
        return page_ids, None
    status = queue.table["status"].to_numpy()[queue.rows]
    return page_ids, queue.sample_ids[status == UNREVIEWED].astype(int).tolist()


def _outside_sets(
    ctx: context.Context, ids: tuple[list[int], list[int] | None]
) -> tuple[list[int], list[int] | None]:
    """The Bulk ids of :func:`_bulk_ids` less the duplicate sets' members in All: a set is
    decided on its card (Keep one / Keep all), never by a Bulk Confirm of one member."""
    if page_issues.selected_issue(ctx) != page_issues.ALL:
        return ids
    page_ids, selection = ids
    outside = page_issues.outside_sets
    return outside(ctx, page_ids), None if selection is None else outside(ctx, selection)


def _length_moved(ctx: context.Context, controls: Controls) -> bool:
    """Whether the queue length follows the review target (not set by hand) and the decisions
    just made moved it away from the length the sidebar shows."""
    if not st.session_state.get(state.TOP_K_AUTO, True):
        return False
    if page_issues.other_queue_order(ctx) is not None:
        return False  # another issue queue: the sidebar shows its flags, which do not move
    length = _review_length(ctx, controls.detector)
    shown = controls.top_k or 0
    return length is not None and int(min(max(length.n, 0), ctx.view.n_samples)) != shown


@st.fragment
def queue_section(ctx: context.Context, controls: Controls, selected: list[int] | None) -> None:
    """The review queue (a fragment: a decision reruns only this part, not the map)."""
    _queue(ctx, controls, selected)
    if _length_moved(ctx, controls):
        st.rerun(scope="app")  # the next cards are drawn; now the sidebar's Queue length box


def _queue(ctx: context.Context, controls: Controls, selected: list[int] | None) -> None:
    """The queue's header, cards and pager."""
    view, store = ctx.view, ctx.store
    table, queue, version = _queue_rows(ctx, controls, selected)
    if (
        controls.show_map
        and controls.color_by == "status"
        and view.has_map
        and version != st.session_state.get(state.MAP_VERSION)
    ):
        st.rerun(scope="app")  # recolour the map by the new statuses
    rows, page, n_pages = page_of(
        queue, int(st.session_state.get(state.PAGE, 0)), controls.per_page
    )
    st.session_state[state.PAGE] = page
    reviewed = int((table["status"] != UNREVIEWED).sum())
    _header(
        ctx,
        controls,
        table,
        (len(queue), reviewed, view.n_samples),
        _outside_sets(ctx, _bulk_ids(queue, rows, controls, selected)),
    )
    writable = store.writable()
    if not writable:
        st.warning(
            "This run directory is read-only: you can browse, but decisions cannot be saved.",
            icon=":material/lock:",
        )
    if rows.empty:
        if len(table) and not controls.show_reviewed and reviewed:
            st.success(
                "Nothing left to review with these filters. Toggle *Show reviewed "
                "samples* in the sidebar to revisit decisions."
            )
        else:
            st.info("No samples match these filters.")
        return
    queue_issue = page_issues.queue_issue(ctx, controls.detector)  # whose rank a card shows
    cards = CardContext(ctx, view.kind, view.label_names, controls.detector, writable, queue_issue)
    if controls.focus_mode:
        _focus(cards, queue)
        return
    _grid(cards, rows, version, (page * controls.per_page, len(queue)))
    _pager(page, n_pages, len(queue), controls.per_page)


def _pager(page: int, n_pages: int, n_rows: int, per_page: int) -> None:
    if n_pages <= 1:
        return
    first = page * per_page + 1
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.button(
            "Previous",
            key=keys.PAGE_PREV,
            icon=":material/chevron_left:",
            disabled=page == 0,
            on_click=actions.go_to_page,
            args=(page - 1,),
        )
        st.html(
            f"<div style='text-align:center'>page {page + 1} of {n_pages} · "
            f"cards {first:,}–{min(first + per_page - 1, n_rows):,} of {n_rows:,}</div>",
            width="stretch",
        )
        st.button(
            "Next",
            key=keys.PAGE_NEXT,
            icon=":material/chevron_right:",
            icon_position="right",
            disabled=page >= n_pages - 1,
            on_click=actions.go_to_page,
            args=(page + 1,),
        )


def _drill_banner() -> None:
    """After a click in the Summary's given x predicted table: what the queue shows, and the
    way back to the queue as it was."""
    drill = st.session_state.get(state.DRILL)
    if drill is None:
        return
    given, predicted = drill
    which = f"given **{md_escape(given)}**"
    if predicted is not None:
        which += f" and predicted **{md_escape(predicted)}**"
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.info(
            f"Showing every sample {which} (from the Summary's charts), reviewed ones included.",
            icon=":material/filter_alt:",
            width="stretch",
        )
        st.button(
            "Back to the queue",
            key=keys.LEAVE_DRILL,
            icon=":material/arrow_back:",
            on_click=actions.leave_drill,
        )


def _narrowed(controls: Controls) -> bool:
    """Whether the sidebar's label filters or search narrow the queue."""
    return bool(
        controls.classes or controls.pred_classes or controls.disagree or controls.search.strip()
    )


def render() -> None:
    """The whole review page."""
    ctx = context.load_context()
    controls = sidebar_controls(ctx)
    for note in ctx.view.notes:
        st.info(note, icon=":material/info:")
    _drill_banner()
    shortcuts.install()
    install_style()
    if page_issues.issue_selector(ctx) == page_issues.DUPLICATE:
        _duplicates_head(ctx)
        page_issues.duplicate_section(ctx, _narrowed(controls))  # the sets take the width
        return
    if not (controls.show_map and ctx.view.has_map) or controls.focus_mode:
        queue_section(ctx, controls, None)  # focus mode: the card gets the width
        return
    # the map beside the cards (a laptop sees the first row of cards on load); Streamlit
    # stacks the two columns on a narrow window, the map above
    left, right = st.columns(MAP_COLUMNS, gap="medium")
    with left:
        selected = _map_section(ctx, controls)
    with right:
        queue_section(ctx, controls, selected)

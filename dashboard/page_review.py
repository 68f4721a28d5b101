"""The review page: sidebar controls, the gradient map, the queue of cards."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from dashboard import actions, cache, context, state
from dashboard.cards import md_escape, md_text, render_card
from dashboard.mapfig import COLOR_BY_LABELS, MapLayer
from dashboard.queue import (
    MapSelection,
    RunView,
    page_of,
    queue_rows,
    read_map_selection,
    run_files_stamp,
)
from ogad_core.review.store import UNREVIEWED

CARD_COLUMNS = {"image": 4, "text": 3, "tabular": 4}  # cards per row, by data kind
PER_PAGE_CHOICES = (6, 9, 12, 18, 24, 36)


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


def _on_detector_change() -> None:
    st.session_state[state.MIN_SCORE] = None
    state.reset_page()


def sidebar_controls(view: RunView) -> Controls:
    """Draw the queue controls in the sidebar and return their values."""
    with st.sidebar:
        st.subheader("Queue")
        detector: str | None = None
        if view.detectors:
            if st.session_state.get(state.DETECTOR) not in view.detectors:
                st.session_state[state.DETECTOR] = view.default_detector
            detector = st.selectbox(
                "Detector",
                view.detectors,
                key=state.DETECTOR,
                on_change=_on_detector_change,
                help="Whose ranking orders the queue (rank 1 = most suspicious).",
            )
        else:
            st.caption("No detector scores yet: the queue is ordered by loss.")
        chosen = st.multiselect(
            "Classes (given label)",
            view.label_names,
            key=state.CLASSES,
            on_change=state.reset_page,
            placeholder="All classes",
        )
        top_k = st.number_input(
            "Top-k by rank (0 = all)",
            min_value=0,
            max_value=max(view.n_samples, 1),
            step=50,
            key=state.TOP_K,
            on_change=state.reset_page,
        )
        min_score = None
        if detector is not None:
            scores = view.table[f"{detector}_score"].to_numpy(dtype=float)
            lo, hi = float(np.nanmin(scores)), float(np.nanmax(scores))
            if st.toggle("Score threshold", key=state.USE_MIN_SCORE, on_change=state.reset_page):
                current = st.session_state.get(state.MIN_SCORE)
                if current is None or not lo <= current <= hi:
                    st.session_state[state.MIN_SCORE] = float(np.nanquantile(scores, 0.9))
                if hi > lo:
                    min_score = st.slider(
                        "Minimum score",
                        min_value=lo,
                        max_value=hi,
                        key=state.MIN_SCORE,
                        on_change=state.reset_page,
                    )
        show_reviewed = st.toggle(
            "Show reviewed samples", key=state.SHOW_REVIEWED, on_change=state.reset_page
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
    return Controls(
        detector=detector,
        color_by=color_by,
        classes=[view.label_names.index(c) for c in chosen if c in view.label_names],
        top_k=int(top_k) or None,
        min_score=min_score,
        show_reviewed=bool(show_reviewed),
        per_page=int(per_page),
        show_map=bool(show_map),
    )


def _map_section(ctx: context.Context, controls: Controls) -> list[int] | None:
    """Draw the map; returns the sample ids selected or clicked on it (None: no selection)."""
    if not ctx.view.has_map:
        return None  # the page's notes say how to make one
    st.markdown("##### Gradient map")
    stamp = run_files_stamp(ctx.run_path)
    version = ctx.store.version() if controls.color_by == "status" else -1
    layer = cache.map_layer(ctx.run_path, stamp, controls.color_by, controls.detector, version)
    st.session_state[state.MAP_VERSION] = version
    event = st.plotly_chart(
        layer.figure,
        key=f"{state.map_key()}_{controls.color_by}_{controls.detector}",  # recoloured: cleared
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
        config={"displaylogo": False, "scrollZoom": True},
        alt="UMAP map of the per-sample gradients; box or lasso select to filter the queue, "
        "click a point to open its card",
    )
    picked = read_map_selection(event.get("selection") if event else None, layer)
    _map_caption(layer, picked)
    return picked.ids


def _map_caption(layer: MapLayer, picked: MapSelection) -> None:
    """What the map shows, or what is selected on it (with a button to clear it)."""
    if picked.ids:
        n = len(picked.ids)
        if picked.kind == "click" and n == 1:
            text = f"#{picked.ids[0]} picked on the map: the queue below shows its card."
        elif picked.kind == "click":
            text = f"{n:,} samples picked on the map: the queue shows these."
        else:
            text = f"{n:,} samples selected on the map: the queue shows these."
        cols = st.columns([3, 1], vertical_alignment="center")
        cols[0].caption(text)
        cols[1].button("Clear selection", on_click=state.clear_map_selection)
        return
    if layer.raster:
        st.caption(
            f"All {layer.n_drawn:,} samples drawn as a density image; the {layer.n_top:,} "
            "top-ranked ones as outlined points, and one sample per map cell as small points. "
            "Pick *Box* or *Lasso Select* in the map's toolbar to review any area; click a "
            "point to open its card."
        )
    else:
        st.caption(
            "The top-ranked samples are outlined and drawn on top. Pick *Box* or *Lasso "
            "Select* in the map's toolbar to review just those samples; click a point to open "
            "its card."
        )


@st.fragment
def queue_section(run_path: str, controls: Controls, selected: list[int] | None) -> None:
    """The review queue (a fragment: a decision reruns only this part, not the map)."""
    view = cache.run_view(run_path)
    store = cache.review_store(run_path)
    table, version = cache.table_with_decisions(run_path)
    if (
        controls.show_map
        and controls.color_by == "status"
        and view.has_map
        and version != st.session_state.get(state.MAP_VERSION)
    ):
        st.rerun(scope="app")  # recolour the map by the new statuses
    message = state.take_flash()
    if message is not None:
        level, text = message
        if level == "error":
            st.error(md_text(text), icon=":material/error:")  # labels and names stay literal
        else:
            st.toast(md_text(text), icon=":material/check:" if level == "success" else None)

    queue = queue_rows(
        view,
        table,
        detector=controls.detector,
        classes=controls.classes,
        top_k=controls.top_k,
        min_score=controls.min_score,
        selected_ids=selected,
        show_reviewed=controls.show_reviewed,
    )
    wanted_page = int(st.session_state.get(state.PAGE, 0))
    rows, page, n_pages = page_of(queue, wanted_page, controls.per_page)
    st.session_state[state.PAGE] = page
    reviewed = int((table["status"] != UNREVIEWED).sum())

    head, undo_col = st.columns([4, 1], vertical_alignment="center")
    what = "to review" if not controls.show_reviewed else "in the queue"
    order = f"{md_escape(controls.detector)} rank" if controls.detector else "loss"
    head.markdown(f"##### Review queue · {len(queue):,} {what}")
    head.caption(f"{reviewed:,} of {view.n_samples:,} samples reviewed · ordered by {order}")
    undo_col.button(
        "Undo last",
        key="undo_last",
        icon=":material/undo:",
        width="stretch",
        help="Undo this session's latest decision.",
        on_click=actions.undo,
        args=(run_path,),
        disabled=not store.can_undo(session_id=state.session_id()),
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
    per_row = CARD_COLUMNS.get(view.kind, 4)
    for start in range(0, len(rows), per_row):
        columns = st.columns(per_row, gap="small")
        for column, row in zip(
            columns, rows.iloc[start : start + per_row].itertuples(index=False), strict=False
        ):
            with column:
                render_card(
                    run_path,
                    view.kind,
                    view.label_names,
                    row,
                    detector=controls.detector,
                    writable=writable,
                )
    _pager(page, n_pages, len(queue), controls.per_page)


def _pager(page: int, n_pages: int, n_rows: int, per_page: int) -> None:
    if n_pages <= 1:
        return
    prev_col, info_col, next_col = st.columns([1, 2, 1], vertical_alignment="center")
    prev_col.button(
        "Previous",
        key="page_prev",
        icon=":material/chevron_left:",
        width="stretch",
        disabled=page == 0,
        on_click=actions.go_to_page,
        args=(page - 1,),
    )
    first = page * per_page + 1
    info_col.markdown(
        f"<div style='text-align:center'>page {page + 1} of {n_pages} · "
        f"cards {first:,}–{min(first + per_page - 1, n_rows):,} of {n_rows:,}</div>",
        unsafe_allow_html=True,
    )
    next_col.button(
        "Next",
        key="page_next",
        icon=":material/chevron_right:",
        icon_position="right",
        width="stretch",
        disabled=page >= n_pages - 1,
        on_click=actions.go_to_page,
        args=(page + 1,),
    )


def render() -> None:
    """The whole review page."""
    ctx = context.load_context()
    controls = sidebar_controls(ctx.view)
    for note in ctx.view.notes:
        st.info(note, icon=":material/info:")
    selected = _map_section(ctx, controls) if controls.show_map else None
    queue_section(ctx.run_path, controls, selected)

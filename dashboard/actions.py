"""Button callbacks (``on_click``): the only place the dashboard writes decisions."""

from __future__ import annotations

import streamlit as st

from dashboard import cache, state
from ogad_core.errors import OgadError
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED

_DONE = {
    CONFIRMED: "confirmed: #{sid} will be dropped",
    REJECTED: "rejected: #{sid} is kept",
    RELABELED: "relabeled: #{sid} is kept as {label}",
}


def decide(run_path: str, sample_id: int, decision: str) -> None:
    """Record ``decision`` for one sample by this session's reviewer (relabel: the card's class)."""
    store = cache.review_store(run_path)
    new_label = None
    if decision == RELABELED:
        new_label = st.session_state.get(f"{state.RELABEL_PREFIX}{sample_id}")
    try:
        store.decide(
            sample_id,
            decision,
            reviewer=state.reviewer(),
            new_label=new_label,
            session_id=state.session_id(),
        )
    except OgadError as err:
        state.flash("error", str(err))
        return
    state.flash("success", _DONE[decision].format(sid=sample_id, label=new_label))


def undo(run_path: str) -> None:
    """Undo this session's latest decision still in effect."""
    store = cache.review_store(run_path)
    try:
        entry = store.undo_last(session_id=state.session_id())
    except OgadError as err:
        state.flash("error", str(err))
        return
    if entry is None:
        state.flash("info", "Nothing to undo in this session.")
        return
    now = entry.decision or "unreviewed"
    state.flash("success", f"undone: #{entry.sample_id} ({entry.prev_decision}) is {now} again")


def go_to_page(page: int) -> None:
    st.session_state[state.PAGE] = max(0, int(page))

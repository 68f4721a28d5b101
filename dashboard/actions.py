"""Button callbacks (``on_click``): the only place the dashboard writes decisions.

Undo works per reviewer name, from the history in reviews.sqlite: it still works after a reload
or in another browser, and a bulk action is undone as one step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import streamlit as st

from dashboard import state
from dashboard.deck_component import read_decision
from ogad_core.errors import OgadError
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED, HistoryEntry

if TYPE_CHECKING:  # the context module imports the cards, which import this one
    from dashboard.context import Context

_DONE = {
    CONFIRMED: "confirmed #{sid}: it will be dropped",
    REJECTED: "rejected #{sid}: it is kept",
    RELABELED: "relabeled #{sid}: kept as {label}",
    UNREVIEWED: "#{sid} is back to unreviewed",
}
_BULK = {CONFIRMED: "confirmed", REJECTED: "rejected"}


def decide(run: Context, sample_id: int, decision: str, choice_key: str | None = None) -> None:
    """Record ``decision`` for one sample by this session's reviewer (relabel: the class chosen
    in the card's widget ``choice_key``; ``unreviewed``: back to the queue)."""
    new_label = None
    if decision == RELABELED:
        key = choice_key or f"{state.RELABEL_PREFIX}{sample_id}"
        new_label = st.session_state.get(key)
    _record(run, sample_id, decision, new_label)


#: a duplicate set's card in All sends these: the sample kept (the others dropped), or the set
KEEP_ONE, KEEP_ALL = "keep_one", "keep_all"


def decide_from_deck(
    run: Context, deck_key: str, set_members: Callable[[int], list[int]] | None = None
) -> None:
    """The card deck's callback: record the decision its button just sent (see
    dashboard.deck_component.read_decision); a set card's Keep one / Keep all decide the
    members ``set_members(sample id)`` names (the server's sets, not the browser's)."""
    sent = read_decision(deck_key)
    if sent is None:
        return
    sample_id, decision, label = sent
    if decision in (KEEP_ONE, KEEP_ALL):
        members = [] if set_members is None else set_members(sample_id)
        if not members:
            state.flash("error", f"#{sample_id} is in no duplicate set")
        elif decision == KEEP_ONE:
            keep_member(run, members, sample_id)
        else:
            keep_all_members(run, members)
        return
    if decision not in _DONE:
        state.flash("error", f"unknown decision {decision!r}")
        return
    names = run.store.label_names
    new_label = names[label] if label is not None and 0 <= label < len(names) else label
    _record(run, sample_id, decision, new_label)


def _record(run: Context, sample_id: int, decision: str, new_label: int | str | None) -> None:
    """Save one decision; the outcome (or the store's refusal) becomes the flash message."""
    store = run.store
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


def decide_all(run: Context, sample_ids: Sequence[int], decision: str, scope: str) -> None:
    """Record one decision for every sample of ``sample_ids`` (a bulk action: one undo step)."""
    store = run.store
    try:
        entries = store.decide_many(
            list(sample_ids), decision, reviewer=state.reviewer(), session_id=state.session_id()
        )
    except OgadError as err:
        state.flash("error", str(err))
        return
    st.session_state[state.BULK_EPOCH] = int(st.session_state.get(state.BULK_EPOCH, 0)) + 1
    n = len(entries)
    state.flash("success", f"{_BULK[decision]} {n:,} sample{'' if n == 1 else 's'} ({scope})")


def decide_each(run: Context, decisions: dict[int, str], done: str) -> None:
    """Record a decision per sample (``{sample_id: decision}``) as one step (one undo), with
    ``done`` as the message (a duplicate set's Keep one)."""
    try:
        run.store.decide_each(decisions, reviewer=state.reviewer(), session_id=state.session_id())
    except OgadError as err:
        state.flash("error", str(err))
        return
    state.flash("success", done)


def keep_member(run: Context, members: list[int], kept: int) -> None:
    """Keep member ``kept`` of a duplicate set (rejected) and drop the others (confirmed), as
    one step: one Undo takes it back."""
    others = [m for m in members if m != kept]
    decisions = {kept: REJECTED, **dict.fromkeys(others, CONFIRMED)}
    dropped = ", ".join(f"#{o}" for o in others)
    decide_each(run, decisions, f"kept #{kept}, dropped {dropped}")


def keep_all_members(run: Context, members: list[int]) -> None:
    """Keep every member of a duplicate set: the unreviewed ones are rejected (a relabeled or
    already decided member keeps its decision)."""
    store = run.store
    open_members = [m for m in members if store.get(m) == UNREVIEWED]
    if open_members:
        decide_all(run, open_members, REJECTED, f"duplicate set #{min(members)}")


def _undone_text(entries: list[HistoryEntry]) -> str:
    if len(entries) > 1:
        return f"undone: a bulk action on {len(entries):,} samples"
    entry = entries[0]
    before = entry.prev_decision or UNREVIEWED
    return f"undone: #{entry.sample_id} ({before}) is {entry.decision or UNREVIEWED} again"


def undo(run: Context) -> None:
    """Undo this reviewer's latest step still in effect (from any session)."""
    store = run.store
    try:
        entries = store.undo_step(reviewer=state.reviewer())
    except OgadError as err:
        state.flash("error", str(err))
        return
    if not entries:
        state.flash("info", f"Nothing of {state.reviewer()}'s to undo.")
        return
    state.flash("undone", _undone_text(entries))
    nonce = int((st.session_state.get(state.RESTORED) or (0, 0))[1]) + 1
    # (sample id, nonce, focus mode still to move to it): the outline follows the restored card
    st.session_state[state.RESTORED] = (int(entries[0].sample_id), nonce, True)


def go_to_page(page: int) -> None:
    st.session_state[state.PAGE] = max(0, int(page))


def move_focus(index: int) -> None:
    """Focus mode: show the card at ``index`` of the queue."""
    st.session_state[state.FOCUS] = max(0, int(index))


def filter_by_cell(given: str, predicted: str | None) -> None:
    """Summary chart click -> the samples given ``given`` (and predicted ``predicted``, None =
    any), every one of them (reviewed included, past the queue's length); the queue's own
    filters are kept aside and :func:`leave_drill` brings them back (the caller switches to
    the review page)."""
    if st.session_state.get(state.DRILL) is None:
        st.session_state[state.DRILL_BACK] = {
            key: st.session_state.get(key, state.DEFAULTS.get(key)) for key in state.DRILL_KEYS
        }
    st.session_state[state.DRILL] = (given, predicted)
    st.session_state[state.CLASSES] = [given]
    st.session_state[state.PRED_CLASSES] = [] if predicted is None else [predicted]
    st.session_state[state.DISAGREE] = False
    st.session_state[state.SEARCH] = ""
    st.session_state[state.SHOW_REVIEWED] = True
    st.session_state[state.USE_MIN_SCORE] = False
    state.reset_page()


def leave_drill() -> None:
    """Back from a Summary drill-down to the queue as it was (its filters restored)."""
    saved = st.session_state.get(state.DRILL_BACK) or {}
    for key in state.DRILL_KEYS:
        st.session_state[key] = saved.get(key, state.DEFAULTS.get(key))
    st.session_state[state.DRILL] = None
    st.session_state[state.DRILL_BACK] = None
    state.reset_page()

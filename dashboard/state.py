"""Every ``st.session_state`` key the dashboard uses, in one place, with their defaults."""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

# ---- who is reviewing ------------------------------------------------------------------
REVIEWER = "reviewer_name"  # text_input in the sidebar; "" → recorded as DEFAULT_REVIEWER
SESSION_ID = "review_session_id"  # uuid4 hex per browser session (saved with each decision)
DEFAULT_REVIEWER = "anonymous"
REVIEWER_PARAM = "reviewer"  # the URL query parameter that keeps the name across a reload

# ---- review page controls (widget keys) ------------------------------------------------
DETECTOR = "ctl_detector"
COLOR_BY = "ctl_color_by"
CLASSES = "ctl_classes"  # list of class names
TOP_K = "ctl_top_k"  # 0 = all
TOP_K_AUTO = "ctl_top_k_auto"  # True until the reviewer sets the queue length: follow the target
PRED_CLASSES = "ctl_pred_classes"  # list of class names (predicted label)
DISAGREE = "ctl_disagree"  # only samples whose given label differs from the prediction
SEARCH = "ctl_search"  # sample id, file name or text
RERANK = "ctl_rerank"  # re-rank the queue from the decisions made so far
RERANK_LABEL = "ctl_rerank_label"  # the same in the label issue type's order (off: see README)
FOCUS_MODE = "ctl_focus_mode"  # one large card with its neighbours
MIN_SCORE = "ctl_min_score"  # None = no threshold
USE_MIN_SCORE = "ctl_use_min_score"
SHOW_REVIEWED = "ctl_show_reviewed"
PER_PAGE = "ctl_per_page"
SHOW_MAP = "ctl_show_map"
ISSUE = "ctl_issue"  # the issue type whose queue is shown (dashboard.page_issues)
ISSUE_PARAM = "issue"  # the URL query parameter that keeps it across a reload
ISSUE_PARAM_MAX = 40  # characters read from the address (the page checks the name)

# ---- review page state -----------------------------------------------------------------
PAGE = "queue_page"  # 0-based page of the queue
MAP_EPOCH = "map_epoch"  # bumped to clear the map selection (part of the chart key)
MAP_VERSION = "map_drawn_version"  # reviews version the map was coloured with
FLASH = "flash"  # (level, message) from the last button callback: "success" | "error" | "info"
RELABEL_PREFIX = "relabel_to_"  # + sample id (see relabel_key): a card's Relabel class choice
DECK = "review_deck"  # the grid's card deck element (its trigger: the decision sent)
FOCUS = "focus_index"  # 0-based position of the focused card in the queue (focus mode)
BULK_SCOPE = "bulk_scope"  # "page" | "selection"
BULK_EPOCH = "bulk_epoch"  # part of the Bulk menu's key: a new (closed) menu after each action
DRILL = "drill_cell"  # (given, predicted) opened from the Summary's table, None = the queue
DRILL_BACK = "drill_back"  # the queue's filters before the drill-down (restored by Back)
RESTORED = "restored_sid"  # (sample id, nonce) the last Undo brought back: the keys focus it

# ---- summary page ----------------------------------------------------------------------
EXPORT_ONLY_KEPT = "export_only_kept"
EXPORT_DETECTOR = "export_detector"

# widget values that must survive a visit to another page (Streamlit drops the state of
# widgets that were not drawn in a run unless the key is written again)
PERSISTENT = (
    REVIEWER,
    DETECTOR,
    COLOR_BY,
    CLASSES,
    TOP_K,
    TOP_K_AUTO,
    PRED_CLASSES,
    DISAGREE,
    SEARCH,
    RERANK,
    RERANK_LABEL,
    FOCUS_MODE,
    MIN_SCORE,
    USE_MIN_SCORE,
    SHOW_REVIEWED,
    PER_PAGE,
    SHOW_MAP,
    ISSUE,
    EXPORT_ONLY_KEPT,
    EXPORT_DETECTOR,
)
#: the queue filters a drill-down from the Summary replaces (and Back restores)
DRILL_KEYS = (CLASSES, PRED_CLASSES, DISAGREE, SEARCH, SHOW_REVIEWED, USE_MIN_SCORE)

DEFAULTS: dict[str, Any] = {
    REVIEWER: "",
    COLOR_BY: "score",
    CLASSES: [],
    TOP_K: 0,
    TOP_K_AUTO: True,
    PRED_CLASSES: [],
    DISAGREE: False,
    SEARCH: "",
    RERANK: True,
    RERANK_LABEL: False,
    FOCUS_MODE: False,
    FOCUS: 0,
    USE_MIN_SCORE: False,
    SHOW_REVIEWED: False,
    PER_PAGE: 8,
    SHOW_MAP: True,
    PAGE: 0,
    MAP_EPOCH: 0,
    MAP_VERSION: -1,
    FLASH: None,
    EXPORT_ONLY_KEPT: False,
    BULK_EPOCH: 0,
    DRILL: None,
    DRILL_BACK: None,
    RESTORED: None,
}


def init() -> None:
    """Set missing defaults, give the session an id, keep cross-page widget values alive."""
    if SESSION_ID not in st.session_state:
        st.session_state[SESSION_ID] = uuid.uuid4().hex
        name = st.query_params.get(REVIEWER_PARAM, "")  # a reload keeps the reviewer (and undo)
        if REVIEWER not in st.session_state and name:
            st.session_state[REVIEWER] = " ".join(str(name).split())[:80]
        issue = str(st.query_params.get(ISSUE_PARAM, "")).strip()[:ISSUE_PARAM_MAX]
        if ISSUE not in st.session_state and issue:  # the review page checks it is one
            st.session_state[ISSUE] = issue
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value
    for key in PERSISTENT:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def reviewer() -> str:
    """The reviewer name for new decisions."""
    name = " ".join(str(st.session_state.get(REVIEWER, "")).split())
    return name or DEFAULT_REVIEWER


def remember_reviewer() -> None:
    """Put the reviewer name into the URL, so a reload (or a bookmark) keeps it."""
    name = " ".join(str(st.session_state.get(REVIEWER, "")).split())
    current = st.query_params.get(REVIEWER_PARAM)
    if name and current != name:
        st.query_params[REVIEWER_PARAM] = name
    elif not name and current is not None:
        del st.query_params[REVIEWER_PARAM]


def remember_issue(default: str = "label") -> None:
    """Put the selected issue type into the URL (``?issue=outlier``), so a reload keeps the
    queue; the default (``label``) is left out of the address."""
    issue = st.session_state.get(ISSUE)
    current = st.query_params.get(ISSUE_PARAM)
    if issue and issue != default and current != issue:
        st.query_params[ISSUE_PARAM] = str(issue)
    elif (not issue or issue == default) and current is not None:
        del st.query_params[ISSUE_PARAM]


def session_id() -> str:
    return str(st.session_state[SESSION_ID])


def flash(level: str, message: str) -> None:
    st.session_state[FLASH] = (level, message)


def take_flash() -> tuple[str, str] | None:
    """The pending callback message (then cleared)."""
    value = st.session_state.get(FLASH)
    st.session_state[FLASH] = None
    return value


def reset_page() -> None:
    """Back to the first page of the queue and its first card (after a filter changed)."""
    st.session_state[PAGE] = 0
    st.session_state[FOCUS] = 0


def top_k_set_by_hand() -> None:
    """The reviewer chose a queue length: stop following the review target."""
    st.session_state[TOP_K_AUTO] = False
    reset_page()


def map_key() -> str:
    return f"gradient_map_{st.session_state.get(MAP_EPOCH, 0)}"


def clear_map_selection() -> None:
    st.session_state[MAP_EPOCH] = int(st.session_state.get(MAP_EPOCH, 0)) + 1
    reset_page()


def relabel_key(sample_id: int, status: str, new_label: int | None) -> str:
    """Widget key of a card's Relabel class choice. A decided card's key names its decision,
    so the choice starts again from the card's new default (its current label) after each
    decision, and no value is ever pushed into a widget that is not drawn."""
    if status == "unreviewed":
        return f"{RELABEL_PREFIX}{sample_id}"
    return f"{RELABEL_PREFIX}{sample_id}.{status}.{'' if new_label is None else new_label}"

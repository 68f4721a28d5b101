"""The review cards of one queue page as ONE Streamlit components v2 element (``deck.js``).

Each Streamlit element costs the browser time on every rerun (2–3 ms each, measured), and a page
of native cards was about 40 elements: a decision is faster as one element that redraws its
cards. The card bodies are HTML made and escaped by :mod:`dashboard.cards`; the buttons send the
trigger ``decision`` = ``{"sid": int, "decision": str, "label": int | None}``, read back by
:func:`read_decision` in the ``on_decision`` callback. HTML, CSS and JavaScript are read from
this folder and served inline with the app: no build step, nothing fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import keys
from dashboard.inline_component import inline_component

COMPONENT_NAME = "ogad_card_deck"
DECISION = "decision"  # the trigger's name
_card_deck = inline_component(
    COMPONENT_NAME,
    Path(__file__).resolve().parent,
    "deck",
    isolate_styles=False,  # the keys find the cards' buttons in the page (no shadow root)
)


def card_deck(data: dict[str, Any], *, key: str, on_decision: Callable[[], None]) -> None:
    """Draw the cards of ``data`` = {"cards": [card payloads], "label_names": [str],
    "columns": int, "writable": bool, "version": the decision store's version shown}; a button
    press calls ``on_decision`` before the rerun."""
    _card_deck(
        key=key,
        data={**data, "keys": keys.for_scripts()},  # the widget key prefixes deck.js uses
        on_decision_change=on_decision,
        width="stretch",
        height="content",
    )


def read_decision(key: str) -> tuple[int, str, int | None] | None:
    """The decision the deck ``key`` just sent: (sample id, decision, class index or None), or
    None when there is none or it is malformed."""
    sent = (st.session_state.get(key) or {}).get(DECISION)
    if not isinstance(sent, dict):
        return None
    try:
        label = sent.get("label")
        return int(sent["sid"]), str(sent["decision"]), None if label is None else int(label)
    except (KeyError, TypeError, ValueError):
        return None

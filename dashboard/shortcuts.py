"""Keyboard shortcuts for the review queue: one small script in the page (no iframe).

C confirm, R reject, L relabel (to the class in the card's Relabel menu: the suggestion by
default; on focus mode's native card the key first opens the menu, the grid's card deck has the
button in the page already), B back to unreviewed, U undo,
J / K next / previous card. The focused card has an outline; in the grid, J / K move the focus
in the browser without a rerun (at the end of the page they turn the page); in focus mode they
press the Next / Previous buttons. A key does nothing while the reviewer types in a text field,
a selectbox or a number field (a toggle or a button keeps the keys working). The listener runs
first (window, capture phase) and stops a handled key there, so Streamlit's own C (clear caches)
and R (rerun) never see it.

The keys press the card's own buttons (located by their widget keys, ``confirm_<id>`` etc.), so a
shortcut does exactly what the click does and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from dashboard import keys

# the shortcut tables (widget keys and their prefixes: dashboard/keys.py)
CARD_KEYS = keys.CARD_SHORTCUTS
MENU_KEYS = keys.MENU_SHORTCUTS
PAGE_KEYS = keys.PAGE_SHORTCUTS
NAV_KEYS = keys.NAV_SHORTCUTS
LEGEND_HTML = (
    "Keys: <b>C</b> confirm (the flag is right: the sample is dropped) · <b>R</b> reject (the "
    "flag is wrong: kept) · <b>L</b> relabel (to the class in the card's Relabel menu) · "
    "<b>B</b> back to unreviewed · <b>U</b> undo · <b>J</b> / <b>K</b> next / previous card · "
    "<b>Esc</b> leaves a text field"
)

#: the script, a file beside this module (package data)
SCRIPT_JS = Path(__file__).resolve().parent / "shortcuts.js"


def script() -> str:
    """The shortcut script with its key tables filled in."""
    script = SCRIPT_JS.read_text(encoding="utf-8")
    return (
        "\n<script>\n"
        + (
            script.replace("__CARD_KEYS__", json.dumps(CARD_KEYS))
            .replace("__PAGE_KEYS__", json.dumps(PAGE_KEYS))
            .replace("__NAV_KEYS__", json.dumps(NAV_KEYS))
            .replace("__MENU_KEYS__", json.dumps(MENU_KEYS))
            .replace("__CARD__", json.dumps(keys.CARD))
        )
        + "</script>\n"
    )


def install() -> None:
    """Add the shortcut listener to the page (idempotent: a re-run replaces the old listener)."""
    st.html(script(), unsafe_allow_javascript=True)

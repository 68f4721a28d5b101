"""Reading and pressing the review cards in Streamlit's ``AppTest`` (tests and benchmarks).

The grid's cards are one components v2 element (dashboard.deck_component), which AppTest shows as
an element it does not know: its data (the cards) are read from the element's JSON, and a button
press is sent the way the browser sends it, as the component's ``decision`` trigger in the widget
states of the next run. Focus mode's large card is made of native Streamlit buttons; those are
clicked.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from dashboard import keys
from dashboard.chart_component import CLICK
from dashboard.chart_component import COMPONENT_NAME as CHART_COMPONENT
from dashboard.deck_component import COMPONENT_NAME, DECISION
from dashboard.table_component import COMPONENT_NAME as TABLE_COMPONENT

DECISIONS = {
    "confirm": "confirmed",
    "reject": "rejected",
    "relabel": "relabeled",
    "unreview": "unreviewed",
    "keep_one": "keep_one",  # a duplicate set's card in All: sid = the member kept
    "keep_all": "keep_all",  # sid = the set card's
}

#: a card's action -> the prefix of its button's key (focus mode's native buttons)
BUTTONS = {
    "confirm": keys.CONFIRM,
    "reject": keys.REJECT,
    "relabel": keys.RELABEL,
    "unreview": keys.UNREVIEW,
}


def _deck(at: AppTest) -> Any | None:
    decks = [e for e in at.get("bidi_component") if e.proto.component_name == COMPONENT_NAME]
    return decks[0] if decks else None


def deck_data(at: AppTest) -> dict[str, Any] | None:
    """The data the card deck was drawn with ({"cards": [...], "label_names": ...}), or None
    when the page has no deck (focus mode, an empty queue)."""
    deck = _deck(at)
    return None if deck is None else json.loads(deck.proto.json)


def deck_cards(at: AppTest) -> list[dict[str, Any]]:
    """The card deck's cards (sid, body, status, choice, choice_key), in queue order."""
    data = deck_data(at)
    return [] if data is None else list(data["cards"])


def card_ids(at: AppTest) -> list[int]:
    """Sample ids of the cards on screen, in order: the deck's, else focus mode's native card."""
    cards = deck_cards(at)
    if cards:
        return [int(card["sid"]) for card in cards]
    found = [b.key for b in at.button if b.key and b.key.startswith(keys.CONFIRM)]
    return [int(key.removeprefix(keys.CONFIRM)) for key in found]


def press_card(at: AppTest, sid: int, act: str, label: int | None = None) -> AppTest:
    """Press the card's ``act`` button ("confirm", "reject", "relabel" to class index ``label``,
    "unreview") and run the app, as a click in the browser does."""
    deck = _deck(at)
    if deck is None:
        return at.button(key=keys.of(BUTTONS[act], sid)).click().run()
    members = [int(m["sid"]) for c in deck_cards(at) for m in c.get("set") or ()]
    assert int(sid) in card_ids(at) + members, f"no card #{sid} on the page"
    states = at._tree.get_widget_states()  # what the browser sends with its next rerun
    trigger = states.widgets.add()
    trigger.id = _make_trigger_id(deck.proto.id, "events")
    value = {"sid": int(sid), "decision": DECISIONS[act], "label": label}
    trigger.json_trigger_value = json.dumps([{"event": DECISION, "value": value}])
    return at._run(states)


def _charts(at: AppTest) -> list[Any]:
    """The page's chart elements (not the hidden one that preloads plotly.js)."""
    return [
        e
        for e in at.get("bidi_component")
        if e.proto.component_name == CHART_COMPONENT and "figure" in json.loads(e.proto.json)
    ]


def chart_figures(at: AppTest) -> list[dict[str, Any]]:
    """The plotly figures (dicts) the page's charts were drawn with, in page order."""
    return [json.loads(json.loads(c.proto.json)["figure"]) for c in _charts(at)]


def page_tables(at: AppTest) -> list[pd.DataFrame]:
    """The tables the page drew (dashboard.table_component), raw values, in page order."""
    tables = [e for e in at.get("bidi_component") if e.proto.component_name == TABLE_COMPONENT]
    out = []
    for table in tables:
        data = json.loads(table.proto.json)
        out.append(pd.DataFrame(data["values"], columns=data["columns"]))
    return out


def click_chart(at: AppTest, key: str, customdata: Any) -> AppTest:
    """Click a point of the chart ``key`` whose customdata is ``customdata`` and run the app,
    as a click in the browser does (the chart component's ``click`` trigger)."""
    (chart,) = [c for c in _charts(at) if c.proto.id.endswith(f"-{key}")]
    states = at._tree.get_widget_states()
    trigger = states.widgets.add()
    trigger.id = _make_trigger_id(chart.proto.id, "events")
    trigger.json_trigger_value = json.dumps([{"event": CLICK, "value": customdata}])
    return at._run(states)


def open_page(at: AppTest, url_path: str) -> AppTest:
    """Switch to the page registered under ``url_path`` (dashboard.pages.SUMMARY, ...); run it
    with ``.run()``. ``AppTest.switch_page`` takes only page files, and the dashboard registers
    its pages by callable: this selects the page's hash (an ``st.Page``'s hash is that of its
    address path) among those the last run registered, as the browser does at ``/url_path``."""
    page_hash = calc_hash(url_path)
    if page_hash not in at._registered_pages:
        raise ValueError(f"no page {url_path!r}; run the app once before switching pages")
    at._page_hash = page_hash
    return at

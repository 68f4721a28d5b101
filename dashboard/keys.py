"""The widget keys the review page, its scripts (``shortcuts.js``, the card deck's ``deck.js``)
and the tests share: each spelled once, here. Streamlit gives an element with key ``k`` the
class ``st-key-k``; the scripts and the browser tests find cards and buttons by that class.

A card's keys are a prefix and the sample id (:func:`of`); the page's buttons have fixed keys.
"""

from __future__ import annotations

CARD = "card_"  # the card's container (grid and focus mode)
CONFIRM = "confirm_"
REJECT = "reject_"
RELABEL = "relabel_"  # the Relabel button inside the menu
RELABEL_MENU = "relabel_menu_"  # the popover holding the class list and the Relabel button
UNREVIEW = "unreview_"  # Back to unreviewed
PEEK = "peek_"  # focus mode's small preview of the previous / next card
UNDO = "undo_last"
FOCUS_NEXT, FOCUS_PREV = "focus_next", "focus_prev"  # focus mode's Next / Previous
PAGE_NEXT, PAGE_PREV = "page_next", "page_prev"  # the grid's page buttons
BULK = "bulk_"  # + the decision: the Bulk menu's buttons (bulk_confirmed, bulk_rejected)
BULK_MENU = "bulk_menu_"  # + a counter: the Bulk popover (a fresh one after each action)
QUEUE_HEAD = "queue_head"  # the queue's title row (title and order line, Bulk, Undo)
LEAVE_DRILL = "leave_drill"  # "Back to the queue" after a click in a Summary chart
EXPORT_CSV = "export_csv"  # the Summary's download buttons
REPORT_HTML = "report_html"
CHART_PROGRESS, CHART_SCORES = "chart_progress", "chart_scores"  # the Summary's charts
CHART_PRECISION, CHART_RETRAIN = "chart_precision", "chart_retrain"
CHART_CLASSES = "chart_classes_"  # + a counter: the clickable charts (fresh after a click)
CHART_GIVEN_PRED = "chart_given_pred_"
CHART_RUN = "chart_run_"  # + its index: the Run page's charts
TABLE = "table_"  # + its name: the Summary's tables (dashboard.table_component)
DUPSET = "dupset_"  # + the set id: a duplicate set's card (dashboard.page_issues)
KEEP_ONE, KEEP_ALL = "keep_one_", "keep_all_"  # + the set id: its Keep one / Keep all buttons
KEEP_MEMBER = "keep_member_"  # + sample id: "Keep #id" on a set's card in All (deck); Keep all
# there is KEEP_ALL + the card's sample id
DUP_RELABEL = "dup_relabel_"  # + sample id: a set member's Relabel button

#: keyboard shortcut -> the prefix of the focused card's button it presses
CARD_SHORTCUTS = {"c": CONFIRM, "r": REJECT, "l": RELABEL, "b": UNREVIEW}
#: shortcut -> the prefix of the menu that holds that button (opened first)
MENU_SHORTCUTS = {"l": RELABEL_MENU}
#: shortcut -> a page-level button's key
PAGE_SHORTCUTS = {"u": UNDO}
#: J / K: (focus mode's button, the grid's page button at the end of a page, step)
NAV_SHORTCUTS = {"j": (FOCUS_NEXT, PAGE_NEXT, 1), "k": (FOCUS_PREV, PAGE_PREV, -1)}


def of(prefix: str, sid: int) -> str:
    """The key of sample ``sid``'s element with ``prefix`` (``of(CONFIRM, 7)`` = ``confirm_7``)."""
    return f"{prefix}{int(sid)}"


def css_class(key: str) -> str:
    """The class Streamlit gives the element with widget key ``key``."""
    return f"st-key-{key}"


def selector(key: str, *, prefix: bool = False) -> str:
    """The CSS selector of the element with key ``key``; with ``prefix``, of every element
    whose key starts with ``key`` (``selector(CARD, prefix=True)``: every card)."""
    return f"[class*='{css_class(key)}']" if prefix else f".{css_class(key)}"


def sid_of(class_name: str, prefix: str) -> int:
    """The sample id in an element's class attribute (``st-key-card_12 ...``, CARD -> 12)."""
    head = css_class(prefix)
    found = next(c for c in class_name.split() if c.startswith(head))
    return int(found.removeprefix(head))


def for_scripts() -> dict[str, object]:
    """What the page scripts read (as JSON): the card prefixes and the shortcut tables."""
    return {
        "card": CARD,
        "confirm": CONFIRM,
        "reject": REJECT,
        "relabel": RELABEL,
        "relabelMenu": RELABEL_MENU,
        "unreview": UNREVIEW,
        "keepMember": KEEP_MEMBER,
        "keepAll": KEEP_ALL,
        "cardShortcuts": CARD_SHORTCUTS,
        "menuShortcuts": MENU_SHORTCUTS,
        "pageShortcuts": PAGE_SHORTCUTS,
        "navShortcuts": NAV_SHORTCUTS,
    }

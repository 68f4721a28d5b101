"""ogad review dashboard: ``streamlit run dashboard/app.py`` with ``OGAD_RUN_DIR=DIR``.

Usually started by ``ogad dashboard DIR`` (dashboard.serve). Never imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # a plain checkout (not pip-installed) still finds the packages
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard import context, pages, state  # noqa: E402
from dashboard.cards import md_escape  # noqa: E402

ICON = Path(__file__).resolve().parent / "icon.png"  # served by the app: nothing from the internet

st.set_page_config(
    page_title="ogad · review",
    page_icon=str(ICON),
    layout="wide",
    initial_sidebar_state="expanded",
)
state.init()
state.remember_reviewer()  # every page keeps ?reviewer=NAME in its address (reloads keep it)
state.remember_issue()  # and ?issue=outlier: the issue queue being reviewed
st.html(  # less empty space around the content: more cards on screen
    "<style>[data-testid='stMainBlockContainer']{padding-top:2.2rem;padding-bottom:2rem;"
    "padding-left:2rem;padding-right:2rem}</style>"
)

page = st.navigation(pages.navigation_pages(), position="sidebar")
with st.sidebar:
    if page.url_path in pages.NO_DECISIONS:
        # the name as text: a text box's code is the first a fresh visit would have to load
        st.caption(f"Reviewer: **{md_escape(state.reviewer())}** · set on the Review page")
    else:
        st.text_input(
            "Reviewer",
            key=state.REVIEWER,
            placeholder=state.DEFAULT_REVIEWER,
            max_chars=80,
            on_change=state.remember_reviewer,
            help="Your name, saved with every decision; Undo takes back your own latest "
            "decisions, also after a reload (the name is kept in the page address).",
        )
    run_path = context.run_path_from_env()
    if run_path:
        st.caption(f"Run: {md_escape(Path(run_path).name)}")
page.run()

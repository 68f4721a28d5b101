"""The dashboard's pages, registered with ``st.navigation`` by callable (each page module's
``render``), under the address paths they always had: ``/`` (review), ``/summary``, ``/run_info``.

``switch_to(SUMMARY)`` opens a page from the code (``st.switch_page``); in ``AppTest``, which can
switch only to page files, :func:`dashboard.testing.open_page` does it by address path.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

REVIEW = "review"  # the default page: served at "/"
SUMMARY = "summary"
RUN = "run_info"
#: the pages where no decision is made: their sidebar shows the reviewer's name as text
NO_DECISIONS = (SUMMARY, RUN)


#: (address path, title, icon), in the sidebar's order; the first is the default page
_PAGES = (
    (REVIEW, "Review", ":material/fact_check:"),
    (SUMMARY, "Summary & export", ":material/summarize:"),
    (RUN, "Run", ":material/info:"),
)


def page(url_path: str) -> st.Page:
    """The page registered under ``url_path``, drawn by its module's ``render()``."""
    from dashboard import page_review, page_run, page_summary  # they import this module

    renders = {REVIEW: page_review.render, SUMMARY: page_summary.render, RUN: page_run.render}
    for i, (path, title, icon) in enumerate(_PAGES):
        if path == url_path:
            return st.Page(renders[path], title=title, icon=icon, url_path=path, default=i == 0)
    raise KeyError(url_path)


def navigation_pages() -> list[st.Page]:
    """The pages, in the sidebar's order."""
    return [page(path) for path, *_ in _PAGES]


def switch_to(url_path: str) -> NoReturn:
    """Open the page registered under ``url_path`` (stops this script run)."""
    st.switch_page(page(url_path))
    raise AssertionError("st.switch_page returned")  # it raises to stop the run

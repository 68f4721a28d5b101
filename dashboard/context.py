"""The run the dashboard shows: taken from ``OGAD_RUN_DIR``, loaded through dashboard.cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dashboard import cache
from dashboard.cards import md_text
from dashboard.run_view import RunView
from ogad_core.errors import OgadError
from ogad_core.review.store import ReviewStore

RUN_DIR_ENV = "OGAD_RUN_DIR"


@dataclass(frozen=True)
class Context:
    """The run path (resolved, str), its RunView and its ReviewStore."""

    run_path: str
    view: RunView
    store: ReviewStore


def run_path_from_env() -> str | None:
    """The resolved run directory named by ``OGAD_RUN_DIR``, or None when unset."""
    raw = os.environ.get(RUN_DIR_ENV, "").strip()
    if not raw:
        return None
    return str(Path(raw).expanduser().resolve())


def load_context() -> Context:
    """The current run; on a missing or unreadable run, an error on the page and ``st.stop()``."""
    run_path = run_path_from_env()
    if run_path is None:
        st.error(
            "No run directory given. Start the dashboard with `ogad dashboard DIR` "
            f"(or set {RUN_DIR_ENV}=DIR before `streamlit run dashboard/app.py`)."
        )
        st.stop()
    try:
        view = cache.run_view(run_path)
        store = cache.review_store(run_path)
        store.version()  # a damaged reviews.sqlite is explained here, not in a traceback
    except OgadError as err:
        st.error(f"Cannot show this run. {md_text(err)}")  # paths and names shown literally
        st.caption("Create or finish the run with `ogad compute --data SPEC --run-dir DIR`.")
        st.stop()
    return Context(run_path=run_path, view=view, store=store)

"""The run the dashboard shows (taken from ``OGAD_RUN_DIR``) as one object passed down the pages:
:class:`Context`, whose view, decision store and table come from dashboard.cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import cache
from dashboard.run_view import RunView
from ogad_core.errors import OgadError
from ogad_core.review.store import ReviewStore

RUN_DIR_ENV = "OGAD_RUN_DIR"


@dataclass(frozen=True)
class Context:
    """The run the pages show: its resolved path, and on use its RunView, its ReviewStore and
    its table with the decisions, each read through dashboard.cache (once per state of the
    run's files; a recomputed run or another session's decision shows on the next rerun).

    The store is opened without the RunView (a decision never waits for the run to be read).
    The cache functions take the path (their keys); everything above them takes a Context.
    """

    run_path: str

    @property
    def view(self) -> RunView:
        """The run's samples, scores and map (RunDirError when unusable)."""
        return cache.run_view(self.run_path)

    @property
    def store(self) -> ReviewStore:
        """The run's decision store."""
        return cache.review_store(self.run_path)

    def table(self) -> tuple[pd.DataFrame, int]:
        """(the run table with status / new_label / reviewer columns, the store version)."""
        return cache.table_with_decisions(self.run_path)

    @property
    def name(self) -> str:
        """The run directory's name."""
        return Path(self.run_path).name


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
    from dashboard.cards import md_text  # the cards import the pages' modules, and this one

    ctx = Context(run_path)
    try:
        ctx.view  # noqa: B018 (read here: an unusable run is explained, not a traceback)
        ctx.store.version()  # a damaged reviews.sqlite too
    except OgadError as err:
        st.error(f"Cannot show this run. {md_text(err)}")  # paths and names shown literally
        st.caption("Create or finish the run with `ogad compute --data SPEC --run-dir DIR`.")
        st.stop()
    return ctx

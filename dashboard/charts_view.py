"""The Summary and Run pages' charts (ogad_core.reporting.charts) as the dashboard draws them:
chart data cached per state of the run and its decisions, and a click on a class bar or on a
cell of the given x predicted grid turned into a queue filter (actions.filter_by_cell)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import actions, cache, smart
from dashboard.queue import RunView, run_files_stamp
from ogad_core.reporting import charts
from ogad_core.reporting.report import (
    given_by_predicted,
    issue_distributions,
    read_issues,
    run_figures,
)
from ogad_core.run.rundir import RunDir

REVIEW_PAGE = "views/review.py"
CLICK_EPOCH = "chart_click_epoch"  # part of the clickable charts' keys: a fresh chart per use
PLOTLY_CONFIG = {"displaylogo": False}


@st.cache_data(max_entries=8, show_spinner=False)
def _issues(run_path: str, stamp: tuple, mtime: float | None) -> pd.DataFrame | None:
    return read_issues(RunDir(run_path), [])


def issues_of(run_path: str) -> pd.DataFrame | None:
    """The run's issues.parquet (None without one), re-read when it changes."""
    run = RunDir(run_path)
    path = getattr(run, "issues_path", run.path / "issues.parquet")
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return _issues(run_path, run_files_stamp(run_path), mtime)


def _flagged(view: RunView, detector: str | None, n_target: int) -> np.ndarray:
    """(N,) bool: the samples in the review target's top of ``detector``'s ranking."""
    if detector is None or f"{detector}_rank" not in view.table.columns:
        return np.zeros(view.n_samples, dtype=bool)
    rank = view.table[f"{detector}_rank"].to_numpy(dtype=np.float64)
    return np.nan_to_num(rank, nan=np.inf) <= n_target


def progress_chart(run_path: str, table: pd.DataFrame, target: Any) -> None:
    """The review's progress per block of reviews and the estimate of what is left."""
    decisions = cache.review_store(run_path).current().sort_values("updated_at", kind="stable")
    if decisions.empty or target is None:
        st.caption("The review's progress appears here after the first decisions.")
        return
    expected = round(target.noise_rate * len(table))
    data = charts.progress_data(decisions, expected)
    st.plotly_chart(
        charts.progress_figure(data, target.n_target), config=PLOTLY_CONFIG, key="chart_progress"
    )


def scores_chart(view: RunView, run_path: str, n_flag: int) -> None:
    """Score distributions of every detector (threshold at the review target) and of every
    issue type of issues.parquet (threshold at its flags)."""
    dists: dict[str, tuple[np.ndarray, float | None]] = {}
    for detector in view.detectors:
        values = view.table[f"{detector}_score"].to_numpy(dtype=np.float64)
        dists[detector] = (values, charts.threshold_at(values, n_flag))
    dists.update(issue_distributions(issues_of(run_path)))
    if dists:
        st.plotly_chart(charts.scores_figure(dists), config=PLOTLY_CONFIG, key="chart_scores")


def _clicked(event: Any) -> list[Any]:
    """The customdata of the points a chart's selection holds."""
    selection = (event or {}).get("selection") or {}
    points = selection.get("points", []) or []
    return [p.get("customdata") for p in points if p.get("customdata") is not None]


def _epoch() -> int:
    return int(st.session_state.get(CLICK_EPOCH, 0))


def _open_queue(given: str, predicted: str | None) -> None:
    st.session_state[CLICK_EPOCH] = _epoch() + 1  # a later visit starts with nothing selected
    actions.filter_by_cell(given, predicted)
    st.switch_page(REVIEW_PAGE)


def class_chart(view: RunView, table: pd.DataFrame, detector: str | None, n_flag: int) -> None:
    """Per-class health bars; a click on a class opens its samples in the queue."""
    data = charts.class_health_data(table, view.label_names, _flagged(view, detector, n_flag))
    event = st.plotly_chart(
        charts.class_health_figure(data),
        config=PLOTLY_CONFIG,
        key=f"chart_classes_{_epoch()}",
        on_select="rerun",
        selection_mode="points",
    )
    clicked = _clicked(event)
    if clicked:
        _open_queue(str(clicked[0]), None)


def given_pred_chart(view: RunView, table: pd.DataFrame) -> None:
    """The given x predicted grid; a click on a cell opens those samples in the queue."""
    counts = given_by_predicted(table, view.label_names)
    event = st.plotly_chart(
        charts.given_pred_figure(counts),
        config=PLOTLY_CONFIG,
        key=f"chart_given_pred_{_epoch()}",
        on_select="rerun",
        selection_mode="points",
    )
    clicked = _clicked(event)
    if clicked:
        given, predicted = clicked[0]
        _open_queue(str(given), str(predicted))


def known_noise_charts(view: RunView, run_path: str) -> None:
    """Precision@k per detector and baseline, and the trim-and-retrain curve (evaluation.json)."""
    flipped = view.table["is_flipped"].to_numpy(dtype=bool)
    ranks = {
        c.removesuffix("_rank"): view.table[c].to_numpy(dtype=np.float64)
        for c in view.table.columns
        if c.endswith("_rank")
    }
    if ranks and flipped.any():
        data = charts.precision_at_k_data(ranks, flipped)
        fig = charts.precision_figure(data, int(flipped.sum()))
        st.plotly_chart(fig, config=PLOTLY_CONFIG, key="chart_precision")
    retrain = _retrain(run_path)
    if retrain is not None:
        fig = charts.retrain_figure(*charts.retrain_data(retrain))
        st.plotly_chart(fig, config=PLOTLY_CONFIG, key="chart_retrain")


def _retrain(run_path: str) -> Any:
    from ogad_core.errors import OgadError
    from ogad_core.evaluation.schema import read_report

    path = RunDir(run_path).evaluation_path
    if not path.is_file():
        return None
    try:
        retrain = read_report(path).report.retrain
    except OgadError:
        return None
    return retrain if retrain is not None and retrain.rows else None


def summary_charts(view: RunView, run_path: str, table: pd.DataFrame, detector: str | None):
    """Every chart of the Summary page, in reading order."""
    target = smart.review_target(run_path, detector)
    n_flag = 0 if target is None else int(target.n_target)
    st.markdown("##### Charts")
    left, right = st.columns(2, gap="medium")
    with left:
        progress_chart(run_path, table, target)
        class_chart(view, table, detector, n_flag)
    with right:
        given_pred_chart(view, table)
        scores_chart(view, run_path, n_flag)
    if view.noise_known:
        known_noise_charts(view, run_path)


def run_charts(manifest: dict[str, Any]) -> None:
    """The Run page's charts: training loss per epoch (when recorded) and time per step."""
    figures = run_figures(manifest)
    if not figures:
        return
    columns = st.columns(len(figures), gap="medium")
    for i, (column, fig) in enumerate(zip(columns, figures, strict=True)):
        column.plotly_chart(fig, config=PLOTLY_CONFIG, key=f"chart_run_{i}")
    if "epochs" not in manifest.get("steps", {}).get("train", {}):
        st.caption("Training loss per epoch: recorded by `ogad compute` from this version on.")

"""The Summary and Run pages' charts (ogad_core.reporting.charts) as the dashboard draws them:
through the project's chart component (dashboard.chart_component: the partial plotly.js bundle
served by the dashboard itself), figures cached as JSON per state of the run and its decisions,
and a click on a class bar or on a cell of the given x predicted grid turned into a queue filter
(actions.filter_by_cell)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import actions, keys, pages, review_aids
from dashboard.chart_component import plotly_chart
from dashboard.context import Context
from dashboard.run_view import RunView, run_files_stamp
from ogad_core.reporting import charts
from ogad_core.reporting.report import (
    given_by_predicted,
    issue_distributions,
    read_issues,
    run_figures,
)
from ogad_core.run.rundir import RunDir

SCORE_COLUMNS = 3  # score histograms a row: the chart spans the page's width
CLICK_EPOCH = "chart_click_epoch"  # part of the clickable charts' keys: a fresh chart per use


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
    """(N,) bool: the samples the Label issues queue flags: the label issue type's flags when
    it ranked with ``detector`` (that queue then follows its order), else those in the review
    target's top of ``detector``'s ranking."""
    from dashboard.issue_view import LABEL, load_issue_view

    issues = load_issue_view(view.path) if detector is not None else None
    if issues is not None and issues.label_detector == detector:
        return np.isin(view.table["sample_id"].to_numpy(), issues.flagged_ids(LABEL))
    if detector is None or f"{detector}_rank" not in view.table.columns:
        return np.zeros(view.n_samples, dtype=bool)
    rank = view.table[f"{detector}_rank"].to_numpy(dtype=np.float64)
    return np.nan_to_num(rank, nan=np.inf) <= n_target


@st.cache_data(max_entries=32, show_spinner=False)
def _figure(kind: str, run_path: str, stamp: tuple, version: int, detector: str | None) -> Any:
    """One chart of the Summary page as plotly JSON text, built once per state of the run and
    of its decisions (a page visit draws it without building it again); None: no chart."""
    run = Context(run_path)
    table, _ = run.table()
    target = review_aids.review_target(run, detector)
    n_flag = 0 if target is None else int(target.n_target)
    fig = _BUILDERS[kind](run, table, detector, target, n_flag)
    return None if fig is None else fig.to_json(engine="json")


def _progress_fig(run, table, detector, target, n_flag) -> Any:
    decisions = run.store.current().sort_values("updated_at", kind="stable")
    if decisions.empty or target is None:
        return None
    data = charts.progress_data(decisions, round(target.noise_rate * len(table)))
    return charts.progress_figure(data, target.n_target)


def _classes_fig(run, table, detector, target, n_flag) -> Any:
    view = run.view
    data = charts.class_health_data(table, view.label_names, _flagged(view, detector, n_flag))
    return charts.class_health_figure(data)


def _given_pred_fig(run, table, detector, target, n_flag) -> Any:
    return charts.given_pred_figure(given_by_predicted(table, run.view.label_names))


def _scores_fig(run, table, detector, target, n_flag) -> Any:
    view = run.view
    dists: dict[str, tuple[np.ndarray, float | None]] = {}
    for name in view.detectors:
        values = view.table[f"{name}_score"].to_numpy(dtype=np.float64)
        dists[name] = (values, charts.threshold_at(values, n_flag))
    dists.update(issue_distributions(issues_of(run.run_path)))
    return charts.scores_figure(dists, cols=SCORE_COLUMNS) if dists else None


def _precision_fig(run, table, detector, target, n_flag) -> Any:
    view = run.view
    flipped = view.table["is_flipped"].to_numpy(dtype=bool)
    ranks = {
        c.removesuffix("_rank"): view.table[c].to_numpy(dtype=np.float64)
        for c in view.table.columns
        if c.endswith("_rank")
    }
    if not ranks or not flipped.any():
        return None
    return charts.precision_figure(charts.precision_at_k_data(ranks, flipped), int(flipped.sum()))


def _retrain_fig(run, table, detector, target, n_flag) -> Any:
    retrain = _retrain(run.run_path)
    return None if retrain is None else charts.retrain_figure(*charts.retrain_data(retrain))


_BUILDERS = {
    "progress": _progress_fig,
    "classes": _classes_fig,
    "given_pred": _given_pred_fig,
    "scores": _scores_fig,
    "precision": _precision_fig,
    "retrain": _retrain_fig,
}


def _chart(
    kind: str, run: Context, detector: str | None, *, key: str, clickable: bool = False
) -> tuple[bool, Any]:
    """Draw one cached chart (nothing when it has no data); returns (drawn, the customdata of
    the point just clicked or None)."""
    version = run.store.version() if kind in _NEEDS_DECISIONS else -1
    stamp = (*run_files_stamp(run.run_path), _side_files(run.run_path))
    fig = _figure(kind, run.run_path, stamp, version, detector)
    if fig is None:
        return False, None
    return True, plotly_chart(fig, key=key, clickable=clickable)


_NEEDS_DECISIONS = {"progress", "classes"}


def _side_files(run_path: str) -> tuple:
    """(mtime_ns or None) of evaluation.json and issues.parquet: the charts they feed are
    built again when they change."""
    run = RunDir(run_path)
    paths = (run.evaluation_path, getattr(run, "issues_path", run.path / "issues.parquet"))
    out = []
    for path in paths:
        try:
            out.append(path.stat().st_mtime_ns)
        except OSError:
            out.append(None)
    return tuple(out)


def progress_chart(run: Context, detector: str | None) -> None:
    """The review's progress per block of reviews and the estimate of what is left."""
    if not _chart("progress", run, detector, key=keys.CHART_PROGRESS)[0]:
        st.caption("The review's progress appears here after the first decisions.")


def _epoch() -> int:
    return int(st.session_state.get(CLICK_EPOCH, 0))


def _open_queue(given: str, predicted: str | None) -> None:
    st.session_state[CLICK_EPOCH] = _epoch() + 1  # a later visit starts with nothing selected
    actions.filter_by_cell(given, predicted)
    pages.switch_to(pages.REVIEW)


def class_chart(run: Context, detector: str | None) -> None:
    """Per-class health bars; a click on a class opens its samples in the queue."""
    _, clicked = _chart(
        "classes", run, detector, key=keys.of(keys.CHART_CLASSES, _epoch()), clickable=True
    )
    if isinstance(clicked, str):
        _open_queue(clicked, None)


def given_pred_chart(run: Context) -> None:
    """The given x predicted grid; a click on a cell opens those samples in the queue."""
    _, clicked = _chart(
        "given_pred", run, None, key=keys.of(keys.CHART_GIVEN_PRED, _epoch()), clickable=True
    )
    if isinstance(clicked, list) and len(clicked) == 2:
        given, predicted = clicked
        _open_queue(str(given), str(predicted))


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


def summary_charts(run: Context, detector: str | None) -> None:
    """Every chart of the Summary page, in reading order."""
    st.markdown("##### Charts")
    left, right = st.columns(2, gap="medium")
    with left:
        progress_chart(run, detector)
        class_chart(run, detector)
    with right:
        given_pred_chart(run)
    _chart("scores", run, detector, key=keys.CHART_SCORES)
    if run.view.noise_known:
        _chart("precision", run, None, key=keys.CHART_PRECISION)
        _chart("retrain", run, None, key=keys.CHART_RETRAIN)


def run_charts(manifest: dict[str, Any]) -> None:
    """The Run page's charts: training loss per epoch (when recorded) and time per step."""
    figures = run_figures(manifest)
    if not figures:
        return
    columns = st.columns(len(figures), gap="medium")
    for i, (column, fig) in enumerate(zip(columns, figures, strict=True)):
        with column:
            plotly_chart(fig.to_json(engine="json"), key=keys.of(keys.CHART_RUN, i))
    if "epochs" not in manifest.get("steps", {}).get("train", {}):
        st.caption("Training loss per epoch: recorded by `ogad compute` from this version on.")

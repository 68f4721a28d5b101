"""The gradient map as a plotly WebGL scatter (``scattergl``, fine at 50,000 points).

The points are split into one trace per (given label, predicted label) pair — per (status, given,
predicted) when coloured by review status — so each trace's hover text names its labels and the
per-point data stay numeric (plotly sends numeric arrays as compact binary; strings per point
would cost several MB and about a second per rerun at 50,000 points). Each point's
``customdata`` starts with its sample id (a scalar when coloured by score, else
``[sample_id, score]``).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.queue import STATUSES, RunView

COLOR_BY_LABELS = {
    "score": "Detector score",
    "label": "Given label",
    "pred": "Predicted label",
    "status": "Review status",
}
STATUS_COLORS = {
    "unreviewed": "#A7B1C2",
    "confirmed": "#D1495B",
    "rejected": "#2E9E6A",
    "relabeled": "#EDAE49",
}
CLASS_COLORS = [
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#EECA3B",
    "#BAB0AC",
]
COLORSCALE = "Plasma"


def _marker_size(n: int) -> int:
    return 3 if n > 20_000 else 5 if n > 2_000 else 8


def _hover(
    given: str, pred: str, *, sid_ref: str, score_ref: str | None, status: str | None
) -> str:
    """A trace's hovertemplate: the sample id and score come from the point, the rest is fixed."""
    lines = [
        f"<b>#{sid_ref}</b>",
        f"given: {html.escape(given)}",
        f"predicted: {html.escape(pred)}",
    ]
    if score_ref is not None:
        lines.append(f"score: {score_ref}")
    if status is not None:
        lines.append(status)
    return "<br>".join(lines) + "<extra></extra>"


def build_map_figure(
    view: RunView,
    *,
    color_by: str,
    detector: str | None,
    status: pd.Series | None = None,
) -> go.Figure:
    """A figure with one point per sample at (x, y) (rows without coordinates are left out).

    Args:
        view: the run (its table must have x / y).
        color_by: ``score`` (the detector's score, continuous), ``label``, ``pred`` or ``status``;
            ``score`` without a detector falls back to ``label``.
        detector: whose score to colour by and show on hover.
        status: the review status per table row (needed for ``color_by='status'``).
    """
    table = view.table
    names = view.label_names
    score_col = f"{detector}_score" if detector in view.detectors else None
    if color_by == "score" and score_col is None:
        color_by = "label"
    xs = table["x"].to_numpy(dtype=np.float32)
    ys = table["y"].to_numpy(dtype=np.float32)
    drawn = ~(np.isnan(xs) | np.isnan(ys))
    sids = table["sample_id"].to_numpy(dtype=np.int64)
    score = table[score_col].to_numpy(dtype=np.float64) if score_col else None
    given = table["label"].to_numpy(dtype=np.int64)
    pred = table["pred"].to_numpy(dtype=np.int64)
    statuses = (
        status.to_numpy(dtype=object)
        if status is not None and color_by == "status"
        else np.full(len(table), None, dtype=object)
    )
    size = _marker_size(int(drawn.sum()))

    frame = pd.DataFrame({"given": given, "pred": pred, "status": statuses})[drawn]
    keys = ["status", "given", "pred"] if color_by == "status" else ["given", "pred"]
    groups = frame.groupby(keys, sort=False, dropna=False).indices
    status_order = {s: i for i, s in enumerate(STATUSES)}

    def order(key: tuple) -> tuple:
        *head, g, p = key
        first = status_order.get(head[0], 0) if head else 0
        return (first, g != p, g, p)  # agreeing pairs first: mismatches are drawn on top

    traces: list[dict[str, Any]] = []
    shown_legend: set[Any] = set()
    rows_all = np.flatnonzero(drawn)
    for key in sorted(groups, key=order):
        key = key if isinstance(key, tuple) else (key,)
        rows = rows_all[groups[key]]
        *head, g, p = key
        state = head[0] if head else None
        trace: dict[str, Any] = {
            "type": "scattergl",
            "mode": "markers",
            "x": xs[rows],
            "y": ys[rows],
            "marker": {"size": size, "opacity": 0.85},
        }
        if color_by == "score":
            rows = rows[np.argsort(np.nan_to_num(score[rows], nan=-np.inf), kind="stable")]
            trace.update(x=xs[rows], y=ys[rows], customdata=sids[rows], showlegend=False)
            trace["marker"].update(color=score[rows], coloraxis="coloraxis")
            trace["hovertemplate"] = _hover(
                names[g],
                names[p],
                sid_ref="%{customdata}",
                score_ref="%{marker.color:.3f}",
                status=None,
            )
            trace["name"] = html.escape(f"{names[g]} → {names[p]}")  # legends render HTML
        else:
            if score is not None:
                trace["customdata"] = np.column_stack([sids[rows], score[rows]])
                score_ref: str | None = "%{customdata[1]:.3f}"
            else:
                trace["customdata"] = sids[rows][:, None]
                score_ref = None
            if color_by == "status":
                group, color, label = state, STATUS_COLORS.get(state, "#888"), str(state)
            elif color_by == "pred":
                group, color, label = p, CLASS_COLORS[p % len(CLASS_COLORS)], names[p]
            else:
                group, color, label = g, CLASS_COLORS[g % len(CLASS_COLORS)], names[g]
            trace["marker"]["color"] = color
            trace.update(
                name=html.escape(label),
                legendgroup=str(group),
                showlegend=group not in shown_legend,
            )
            shown_legend.add(group)
            trace["hovertemplate"] = _hover(
                names[g], names[p], sid_ref="%{customdata[0]}", score_ref=score_ref, status=state
            )
        traces.append(trace)

    fig = go.Figure(data=traces)
    if color_by == "score":
        fig.update_layout(
            coloraxis={
                "colorscale": COLORSCALE,
                "colorbar": {"title": {"text": f"{detector}<br>score"}, "thickness": 12},
            }
        )
    fig.update_layout(
        height=400,
        margin={"l": 8, "r": 8, "t": 30, "b": 8},
        dragmode="select",
        uirevision="gradient-map",
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "x": 0,
            "itemsizing": "constant",
        },
        hoverlabel={"font_size": 13},
        xaxis={"showticklabels": False, "title": None, "zeroline": False},
        yaxis={"showticklabels": False, "title": None, "zeroline": False},
    )
    return fig

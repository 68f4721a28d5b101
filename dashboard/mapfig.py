"""The gradient map: plotly WebGL points, or a server-drawn raster with the top points on top.

Up to :data:`FULL_POINTS_MAX` drawable samples every sample is a ``scattergl`` point. Above it
the browser gets one image of all points (:mod:`dashboard.raster`: density, coloured like the
points; WebP, else PNG) as a layout image, plus the :data:`OVERLAY_POINTS` top-ranked samples
as points; box and lasso selections are then turned into sample ids from the map coordinates
(:class:`MapLayer`).

Both ways the axes are equal-scaled, every colouring has a legend (classes / statuses; the score
colouring a colour bar and one legend entry per given class, told apart by marker symbol), and
the top-ranked samples are drawn last (on top), outlined, the best one last of all.

Points are split into one trace per (layer, colour group, given label, predicted label), so each
trace's hover text names its labels and the per-point data stay numeric (plotly sends numeric
arrays as compact binary; strings per point would cost several MB at 50,000 points). Each
point's ``customdata`` is its sample id (score colouring) or ``[sample_id, score]``;
:attr:`MapLayer.trace_ids` maps (trace, point index) back to sample ids either way.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sequential

from dashboard import raster
from dashboard.queue import STATUSES, RunView, queue_order, status_codes

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
CLASS_SYMBOLS = [
    "circle",
    "square",
    "diamond",
    "cross",
    "x",
    "triangle-up",
    "triangle-down",
    "triangle-left",
    "triangle-right",
    "star",
    "hexagon",
    "pentagon",
]
COLORSCALE = "Plasma"
FULL_POINTS_MAX = 20_000  # above this many drawable samples the map is a raster + top points
OVERLAY_POINTS = 2_000  # top-ranked samples drawn as points over the raster
REP_GRID = 48  # ... plus the best-ranked sample of each non-empty cell of this grid
TOP_LAYER_MAX = 200  # at most this many top-ranked samples (2%, at least 10) outlined on top
MAP_HEIGHT = 440


@dataclass(frozen=True)
class MapLayer:
    """A drawn map and what turns a selection on it into sample ids.

    figure: the plotly figure. trace_ids: per trace, the (points,) sample ids in point order.
    points: every drawn sample (finite x / y), sorted for box / lasso queries. raster: True when
    the figure shows a raster with only the top-ranked samples as points. n_drawn: samples on
    the map; n_points: of those, drawn as plotly points; n_top: of those, outlined on top.
    """

    figure: go.Figure
    trace_ids: list[np.ndarray]
    points: raster.PointIndex
    raster: bool
    n_drawn: int
    n_points: int
    n_top: int = 0


@dataclass(frozen=True)
class _Colouring:
    """Per-row colour groups: codes (n,) int index into names / colors; scores (n,) or None."""

    codes: np.ndarray
    names: list[str]
    colors: list[str]
    title: str
    scores: np.ndarray | None  # colours the points when colouring by score
    hover_scores: np.ndarray | None  # shown on hover


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
        lines.append(html.escape(status))
    return "<br>".join(lines) + "<extra></extra>"


def _colouring(
    view: RunView, color_by: str, score: np.ndarray | None, status: pd.Series | None
) -> _Colouring:
    table = view.table
    names = view.label_names
    palette = [CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(len(names))]
    given = table["label"].to_numpy(dtype=np.int64)
    if color_by == "status":
        codes = (
            status_codes(pd.DataFrame({"status": status})).astype(np.int64)
            if status is not None
            else np.zeros(len(table), dtype=np.int64)
        )
        codes[codes < 0] = 0
        colors = [STATUS_COLORS[s] for s in STATUSES]
        return _Colouring(codes, list(STATUSES), colors, "review status", None, score)
    if color_by == "pred":
        codes = table["pred"].to_numpy(dtype=np.int64)
        return _Colouring(codes, names, palette, "predicted label", None, score)
    if color_by == "score" and score is not None:
        return _Colouring(given, names, palette, "given label", score, score)
    return _Colouring(given, names, palette, "given label", None, score)


def build_map(
    view: RunView,
    *,
    color_by: str,
    detector: str | None,
    status: pd.Series | None = None,
    full_points_max: int = FULL_POINTS_MAX,
    overlay_points: int = OVERLAY_POINTS,
) -> MapLayer:
    """The map of ``view`` (rows without coordinates are left out).

    Args:
        view: the run (its table must have x / y).
        color_by: ``score`` (the detector's score, continuous), ``label``, ``pred`` or ``status``;
            ``score`` without a detector falls back to ``label``.
        detector: whose score to colour by and show on hover, and whose ranking picks the
            top-ranked points (the queue order: loss without a detector).
        status: the review status per table row (needed for ``color_by='status'``).
        full_points_max: above this many drawable samples, draw a raster plus the top points.
        overlay_points: how many top-ranked samples the raster map draws as points.
    """
    table = view.table
    score_col = f"{detector}_score" if detector in view.detectors else None
    if color_by == "score" and score_col is None:
        color_by = "label"
    xs = table["x"].to_numpy(dtype=np.float64)
    ys = table["y"].to_numpy(dtype=np.float64)
    drawn = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    sids = table["sample_id"].to_numpy(dtype=np.int64)
    score = table[score_col].to_numpy(dtype=np.float64) if score_col else None
    colouring = _colouring(view, color_by, score, status)
    order = queue_order(view, detector)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))  # each row's place in the queue (0 = top-ranked)
    by_rank = order[np.isfinite(xs[order]) & np.isfinite(ys[order])]  # drawable rows, best first

    use_raster = len(drawn) > full_points_max
    if use_raster:
        shown = by_rank[:overlay_points]
        if color_by == "status":  # reviewed samples stay visible as points
            reviewed = by_rank[colouring.codes[by_rank] != 0][:overlay_points]
            shown = np.union1d(shown, reviewed)
        top, rest = shown, _cell_representatives(xs, ys, by_rank, exclude=shown)
    else:
        top_n = min(TOP_LAYER_MAX, max(10, len(drawn) // 50), len(drawn))
        top, rest = by_rank[:top_n], by_rank[top_n:]
    size = 3 if use_raster else _marker_size(len(top) + len(rest))  # +3 when outlined
    traces, trace_ids = _traces(view, colouring, rest, top, xs, ys, sids, position, size)
    figure = go.Figure(data=traces)
    extent = raster.map_extent(xs[drawn], ys[drawn])
    _layout(figure, colouring, detector, extent)
    if use_raster:
        _add_raster(figure, colouring, xs[drawn], ys[drawn], drawn, extent)
    return MapLayer(
        figure=figure,
        trace_ids=trace_ids,
        points=raster.PointIndex.build(xs[drawn], ys[drawn], sids[drawn]),
        raster=use_raster,
        n_drawn=len(drawn),
        n_points=len(top) + len(rest),
        n_top=len(top),
    )


def _cell_representatives(
    xs: np.ndarray, ys: np.ndarray, by_rank: np.ndarray, *, exclude: np.ndarray
) -> np.ndarray:
    """The best-ranked row in each non-empty cell of a REP_GRID x REP_GRID grid over the map.

    Plotly reports a box or lasso only when it holds at least one plotly point, so a raster map
    also draws these (small, not outlined): a box that covers a whole non-empty cell always
    registers, and its ids then come from the coordinates of every sample.
    """
    if len(by_rank) == 0:
        return np.empty(0, dtype=np.int64)
    extent = raster.map_extent(xs[by_rank], ys[by_rank])
    cell = raster.pixel_index(xs[by_rank], ys[by_rank], extent, (REP_GRID, REP_GRID))
    _, first = np.unique(cell, return_index=True)  # by_rank is best first
    reps = by_rank[np.sort(first)]
    return reps[~np.isin(reps, exclude)]


def build_map_figure(
    view: RunView,
    *,
    color_by: str,
    detector: str | None,
    status: pd.Series | None = None,
) -> go.Figure:
    """The plotly figure of :func:`build_map`."""
    return build_map(view, color_by=color_by, detector=detector, status=status).figure


def _groups(codes: np.ndarray, given: np.ndarray, pred: np.ndarray, rows: np.ndarray):
    """{(code, given, pred): rows in ``rows`` order} for the rows ``rows``."""
    if len(rows) == 0:
        return {}
    frame = pd.DataFrame({"c": codes[rows], "g": given[rows], "p": pred[rows]})
    return {
        key: rows[idx] for key, idx in frame.groupby(["c", "g", "p"], sort=True).indices.items()
    }


def _traces(
    view: RunView,
    colouring: _Colouring,
    rest: np.ndarray,
    top: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    sids: np.ndarray,
    position: np.ndarray,
    size: int,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """The scattergl traces: ``rest`` rows first, then the ``top`` rows outlined, on top."""
    table = view.table
    given = table["label"].to_numpy(dtype=np.int64)
    pred = table["pred"].to_numpy(dtype=np.int64)
    traces: list[dict[str, Any]] = []
    trace_ids: list[np.ndarray] = []
    in_legend: set[int] = set()
    for is_top, rows in ((False, rest), (True, top)):
        groups = _groups(colouring.codes, given, pred, rows)
        # the group holding the better-ranked points goes later (drawn above the others)
        keys = sorted(groups, key=lambda k: -int(position[groups[k]].min()))
        for key in keys:
            group_rows = groups[key]
            if colouring.scores is not None and not is_top:
                group_rows = group_rows[
                    np.argsort(
                        np.nan_to_num(colouring.scores[group_rows], nan=-np.inf), kind="stable"
                    )
                ]
            else:  # worst-ranked first, so the best-ranked point is drawn last
                group_rows = group_rows[np.argsort(-position[group_rows], kind="stable")]
            code, g, p = (int(v) for v in key)
            trace = _trace(view, colouring, group_rows, code, g, p, xs, ys, sids, size, is_top)
            trace.update(showlegend=code not in in_legend)
            in_legend.add(code)
            traces.append(trace)
            trace_ids.append(sids[group_rows])
    for code, name in enumerate(colouring.names):  # a legend entry for groups with no points
        if code not in in_legend and np.any(colouring.codes == code):
            traces.append(_legend_only(colouring, code, name))
            trace_ids.append(np.empty(0, dtype=np.int64))
    return traces, trace_ids


def _trace(
    view: RunView,
    colouring: _Colouring,
    rows: np.ndarray,
    code: int,
    g: int,
    p: int,
    xs: np.ndarray,
    ys: np.ndarray,
    sids: np.ndarray,
    size: int,
    is_top: bool,
) -> dict[str, Any]:
    names = view.label_names
    marker: dict[str, Any] = {
        "size": size + 3 if is_top else size,
        "opacity": 1.0 if is_top else 0.8,
    }
    if is_top:
        marker["line"] = {"width": 1, "color": "#1B1B1B"}
    status = colouring.names[code] if colouring.title == "review status" else None
    trace: dict[str, Any] = {
        "type": "scattergl",
        "mode": "markers",
        "x": xs[rows],
        "y": ys[rows],
        "marker": marker,
        "legendgroup": str(code),
        "legendrank": code,
        "name": html.escape(  # legends render HTML: label names are shown literally
            colouring.names[code] if colouring.scores is None else f"given {names[g]}"
        ),
    }
    if colouring.scores is not None:  # score colouring: colour = score, symbol = given class
        marker.update(
            color=colouring.scores[rows],
            coloraxis="coloraxis",
            symbol=CLASS_SYMBOLS[g % len(CLASS_SYMBOLS)],
        )
        trace["customdata"] = sids[rows]
        trace["hovertemplate"] = _hover(
            names[g],
            names[p],
            sid_ref="%{customdata}",
            score_ref="%{marker.color:.3f}",
            status=None,
        )
        return trace
    marker["color"] = colouring.colors[code]
    if colouring.hover_scores is not None:
        trace["customdata"] = np.column_stack([sids[rows], colouring.hover_scores[rows]])
        score_ref: str | None = "%{customdata[1]:.3f}"
    else:
        trace["customdata"] = sids[rows][:, None]
        score_ref = None
    trace["hovertemplate"] = _hover(
        names[g], names[p], sid_ref="%{customdata[0]}", score_ref=score_ref, status=status
    )
    return trace


def _legend_only(colouring: _Colouring, code: int, name: str) -> dict[str, Any]:
    """An empty trace that only shows a legend entry (a group drawn only in the raster)."""
    marker: dict[str, Any] = {"size": 8}
    if colouring.scores is None:
        marker["color"] = colouring.colors[code]
        label = name
    else:
        marker.update(color="#777777", symbol=CLASS_SYMBOLS[code % len(CLASS_SYMBOLS)])
        label = f"given {name}"
    return {
        "type": "scattergl",
        "mode": "markers",
        "x": [],
        "y": [],
        "marker": marker,
        "name": html.escape(label),
        "legendgroup": str(code),
        "legendrank": code,
        "showlegend": True,
        "hoverinfo": "skip",
    }


def _layout(
    figure: go.Figure, colouring: _Colouring, detector: str | None, extent: raster.Extent
) -> None:
    if colouring.scores is not None:
        scores = colouring.scores[np.isfinite(colouring.scores)]
        lo, hi = (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)
        figure.update_layout(
            coloraxis={
                "colorscale": COLORSCALE,
                "cmin": lo,
                "cmax": hi,
                "colorbar": {"title": {"text": f"{detector}<br>score"}, "thickness": 12},
            }
        )
    figure.update_layout(
        height=MAP_HEIGHT,
        margin={"l": 8, "r": 8, "t": 30, "b": 8},
        # no dragmode: Streamlit then makes a click select its point (clickmode event+select;
        # a layout dragmode of select or lasso turns that off), and dragging pans
        uirevision="gradient-map",
        legend={
            "title": {"text": colouring.title},
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "x": 0,
            "itemsizing": "constant",
        },
        hoverlabel={"font_size": 13},
        xaxis={
            "showticklabels": False,
            "title": None,
            "zeroline": False,
            "range": [extent.x0, extent.x1],
        },
        yaxis={
            "showticklabels": False,
            "title": None,
            "zeroline": False,
            "range": [extent.y0, extent.y1],
            "scaleanchor": "x",
            "scaleratio": 1,
        },
    )


def _add_raster(
    figure: go.Figure,
    colouring: _Colouring,
    xs: np.ndarray,
    ys: np.ndarray,
    rows: np.ndarray,
    extent: raster.Extent,
) -> None:
    """Every drawable sample as one layout image below the points (``rows``: their rows)."""
    shape = raster.raster_shape(extent)
    pix = raster.pixel_index(xs, ys, extent, shape)
    if colouring.scores is not None:
        coloraxis = figure.layout.coloraxis
        rgba = raster.continuous_rgba(
            pix,
            colouring.scores[rows],
            raster.colorscale_lut(sequential.Plasma),
            (float(coloraxis.cmin), float(coloraxis.cmax)),
            shape,
        )
    else:
        rgba = raster.categorical_rgba(pix, colouring.codes[rows], colouring.colors, shape)
    figure.add_layout_image(
        source=raster.image_data_uri(rgba),
        xref="x",
        yref="y",
        x=extent.x0,
        y=extent.y1,
        sizex=extent.width,
        sizey=extent.height,
        sizing="stretch",
        layer="below",
    )

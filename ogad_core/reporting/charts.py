"""The run's charts as plotly figures, and the small tables they are drawn from. Torch-free.

Each ``*_data`` function reduces the run's tables to what one chart shows (a few hundred numbers
at most, whatever the run's size: histograms are binned here, curves are sampled), and each
``*_figure`` function draws it. The dashboard's Summary and Run pages and ``ogad report`` call the
same builders. Figures carry ``customdata`` where a click means something (a class, a cell of the
given x predicted table), which the dashboard turns into a queue filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED

BAD = (CONFIRMED, RELABELED)
HIST_BINS = 50
CURVE_POINTS = 200  # points per precision@k curve
BLOCK = 10  # reviews per block of the progress chart
HEIGHT = 320
COLORS = {
    CONFIRMED: "#D1495B",
    RELABELED: "#EDAE49",
    REJECTED: "#2E9E6A",
    "flagged": "#4C78A8",
    "count": "#BAB0AC",
}
_FONT = {"size": 12}


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        xaxis_title=x or None,  # an empty title still takes its space below the axis
        yaxis_title=y or None,
        height=height,
        font=_FONT,
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    fig.update_layout(margin=margins(fig))
    return fig


# ---- margins ---------------------------------------------------------------------------------
# The template's axes grow the margins to fit their labels (automargin), and plotly.js draws a
# figure again whenever they grow: about a third of a chart's drawing time. Margins wide enough
# for the labels from the start spare that second pass (automargin still widens them for a
# label longer than estimated here).
CHAR_PX = 8.5  # width of a character of the 12 px font (a wide one: Verdana, DejaVu Sans)
NUMBER_CHARS = 4  # a numeric tick label: "100%", "10k", "0.95", "1000"
AXIS_PAD_PX = 16  # between an axis's labels and the figure's edge
RIGHT_AXIS_PX = 14  # a right-hand axis's title stands further off
TITLE_PX = 25  # an axis title of the 12 px font beside its labels
LEGEND_PX = 35  # one row of the horizontal legend below the plot
LEGEND_ROW_PX = 17  # each further row
LEGEND_CHAR_PX = 6.5  # a character of a legend entry
NARROW_PX = 480  # the narrowest a chart is drawn: one of two columns on a 1280 px wide page
MARGIN = {"l": 20, "r": 20, "t": 45, "b": 24}  # without tick labels or titles


def margins(fig: go.Figure) -> dict[str, int]:
    """Margins (px) that fit ``fig``'s tick labels, axis titles and legend: the left axis's
    labels and title on the left, a right axis's on the right, the x axis's below (or above,
    for an axis drawn on top), the legend below the plot."""
    layout = fig.layout
    out = dict(MARGIN)
    for name, side in (("yaxis", "l"), ("yaxis2", "r")):
        axis = layout[name] if name in layout else None
        if axis is None or (name == "yaxis2" and axis.overlaying is None):
            continue
        chars = _tick_chars(fig, name)
        pad = AXIS_PAD_PX + (RIGHT_AXIS_PX if side == "r" else 0)
        out[side] = round(pad + CHAR_PX * chars + (TITLE_PX if _title(axis) else 0))
    out["r"] = max(out["r"], _last_label_overhang(fig, NARROW_PX - out["l"] - out["r"]))
    x_side = "t" if layout.xaxis.side == "top" else "b"
    x_px = 12 + 16 + (TITLE_PX if _title(layout.xaxis) else 0)  # one row of labels
    out[x_side] = max(out[x_side], x_px) if x_side == "b" else out[x_side] + x_px
    if _shows_legend(fig):
        rows = _legend_rows(fig, NARROW_PX - out["l"])
        out["b"] = max(out["b"], x_px + LEGEND_PX + LEGEND_ROW_PX * (rows - 1))
    return out


def _last_label_overhang(fig: go.Figure, width: float) -> int:
    """Px by which the last label of a category x axis, centred on its category, reaches past
    the plot's right edge in a plot ``width`` px wide (0 for a numeric axis), with 4 px to
    spare."""
    names: list[str] = []
    for trace in fig.data:
        values = getattr(trace, "x", None)
        if values is not None and len(values) and isinstance(values[0], str):
            names += [str(v) for v in values if str(v) not in names]
    if not names:
        return 0
    return round(CHAR_PX * len(names[-1]) / 2 - width / len(names) / 2 + 4)


def _legend_rows(fig: go.Figure, width: float) -> int:
    """Rows of the horizontal legend in ``width`` px: each entry is its symbol (40 px) and its
    name; entries wrap as a whole."""
    rows, used = 1, 0.0
    for trace in fig.data:
        if trace.showlegend is False:
            continue
        entry = 40 + LEGEND_CHAR_PX * len(str(trace.name or ""))
        if used and used + entry > width:
            rows, used = rows + 1, 0.0
        used += entry
    return rows


def _tick_chars(fig: go.Figure, name: str) -> int:
    """The longest tick label (characters) of the layout's axis ``name`` ("yaxis", "yaxis2"):
    a category axis's longest name, else a number's."""
    axis, number = name[0], name[5:]
    ids = (f"{axis}{number}",) if number else (axis, None)  # how traces name it
    layout_axis = fig.layout[name]
    chars, numbers = 0, []
    for trace in fig.data:
        if getattr(trace, f"{axis}axis", None) not in ids:
            continue
        values = getattr(trace, axis, None)
        if values is not None and len(values) and isinstance(values[0], str):
            chars = max(chars, max(len(str(v)) for v in values))
        elif values is not None:
            numbers.append(np.asarray(values, dtype=np.float64))
    if numbers:
        chars = max(chars, _number_chars(np.concatenate(numbers), layout_axis))
    return chars or NUMBER_CHARS


def _number_chars(values: np.ndarray, axis: Any) -> int:
    """Characters of the longest tick label plotly.js writes for ``values`` on ``axis``: a share
    as "100%", a log axis as 1, 10, 100, 1000, 10k, 100k, a linear one as 40, 0.8, 5000, 15k."""
    finite = values[np.isfinite(values)]
    if axis.tickformat and str(axis.tickformat).endswith("%"):
        return NUMBER_CHARS
    if finite.size == 0:
        return NUMBER_CHARS
    top = float(np.abs(finite).max())
    sign = int(bool((finite < 0).any()))
    if top >= 1000:
        return NUMBER_CHARS + sign
    if axis.type == "log":  # the range reaches the next power of ten
        return len(str(int(10 ** np.ceil(np.log10(max(top, 1.0))))))
    if top < 10 and not np.allclose(finite, np.round(finite)):
        return 3 + sign  # 0.2, 2.5
    return len(str(int(top))) + sign


def _title(axis: Any) -> bool:
    return bool(axis.title is not None and axis.title.text)


def _shows_legend(fig: go.Figure) -> bool:
    """Whether plotly.js draws a legend: asked for, or by default with two or more traces."""
    shown = fig.layout.showlegend
    return bool(shown) if shown is not None else len(fig.data) > 1


# ---- the review's progress: the "when to stop" curve ------------------------------------------
def progress_data(decisions: pd.DataFrame, expected_bad: int, block: int = BLOCK) -> pd.DataFrame:
    """Per block of ``block`` reviews (in the order they were made): reviews so far, the share
    confirmed or relabeled in the block, the bad samples found so far and the estimated number
    still to find (``expected_bad`` - found, at least 0).

    Args:
        decisions: the decisions in effect, oldest first (column ``decision``).
        expected_bad: the review target's estimate of bad samples in the run.
    """
    bad = decisions["decision"].isin(BAD).to_numpy()
    if len(bad) == 0:
        return pd.DataFrame(columns=["reviews", "share_bad", "found", "left"])
    ends = np.unique(np.minimum(np.arange(block, len(bad) + block, block), len(bad)))
    found = np.cumsum(bad)[ends - 1]
    starts = np.concatenate([[0], ends[:-1]])
    share = np.array([bad[a:b].mean() for a, b in zip(starts, ends, strict=True)])
    return pd.DataFrame(
        {
            "reviews": ends,
            "share_bad": share,
            "found": found,
            "left": np.maximum(int(expected_bad) - found, 0),
        }
    )


def progress_figure(data: pd.DataFrame, n_target: int | None = None) -> go.Figure:
    """Bars: share confirmed / relabeled per block of reviews; line: bad samples estimated to
    be left. The review can stop when the bars stay low and the line is near zero."""
    fig = go.Figure()
    fig.add_bar(
        x=data["reviews"],
        y=data["share_bad"],
        name="confirmed or relabeled (share of the block)",
        marker_color=COLORS[CONFIRMED],
        hovertemplate="reviews up to %{x}: %{y:.0%} confirmed or relabeled<extra></extra>",
    )
    fig.add_scatter(
        x=data["reviews"],
        y=data["left"],
        yaxis="y2",
        mode="lines+markers",
        name="estimated bad samples left",
        line={"color": COLORS["flagged"]},
    )
    if n_target:
        # left of its line: on the right it ran into the "left to find" axis's tick labels
        fig.add_vline(
            x=n_target,
            line_dash="dot",
            annotation_text="review target",
            annotation_position="top left",
        )
    fig.update_layout(
        yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        yaxis2={"overlaying": "y", "side": "right", "title": "left to find", **_count_axis(data)},
    )
    return _layout(fig, "Review progress: when to stop", "reviews made", "share of block")


def _count_axis(data: pd.DataFrame, ticks: int = 4) -> dict[str, Any]:
    """The "left to find" axis: whole samples only (about ``ticks`` ticks from 0), never
    1.026 / 0.513 when few or none are left."""
    top = max(int(data["left"].max()) if len(data) else 0, 1)
    step = max(1, -(-top // ticks))
    return {"range": [0, top * 1.05], "tick0": 0, "dtick": step, "tickformat": ",d"}


# ---- score distributions ----------------------------------------------------------------------
def histogram_data(values: np.ndarray, bins: int = HIST_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres (b,), counts (b,)) of the finite ``values``."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    counts, edges = np.histogram(finite, bins=bins)
    return (edges[:-1] + edges[1:]) / 2, counts


def threshold_at(scores: np.ndarray, n_flagged: int) -> float | None:
    """The score of the ``n_flagged``-th highest score (the flag threshold), None when none."""
    finite = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])[::-1]
    if finite.size == 0 or n_flagged <= 0:
        return None
    return float(finite[min(n_flagged, finite.size) - 1])


def scores_figure(
    distributions: dict[str, tuple[np.ndarray, float | None]],
    title: str = "Score distributions",
    cols: int = 1,
) -> go.Figure:
    """One histogram per detector or issue type ({name: (scores (N,), threshold or None)}),
    log-scaled counts, the flag threshold as a dashed line (samples right of it are flagged);
    ``cols`` panels a row (a wide page), one below the other by default."""
    names = list(distributions)
    fig = go.Figure()
    cols = max(1, min(cols, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig.set_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=names,
        vertical_spacing=0.35 / rows,
        horizontal_spacing=0.06,
    )
    for i, name in enumerate(names):
        values, threshold = distributions[name]
        centres, counts = histogram_data(values)
        at = {"row": i // cols + 1, "col": i % cols + 1}
        fig.add_bar(x=centres, y=counts, name=name, marker_color=COLORS["flagged"], **at)
        if threshold is not None:
            fig.add_vline(x=threshold, line_dash="dash", line_color=COLORS[CONFIRMED], **at)
        # a label per power of ten only (1, 10, 100, 1k): plotly's default labels the 2s and
        # 5s in between too, which crowds a short panel
        fig.update_yaxes(type="log", dtick=1, **at)
    fig.update_layout(showlegend=False, bargap=0.02)
    # the axes' meaning in the title: an x title under the first panel would sit on the next
    title = f"{title} (score: higher = more suspicious; dashed: the flag threshold)"
    return _layout(fig, title, "", "samples", 170 * rows + 90)


# ---- classes ------------------------------------------------------------------------------
def class_health_data(
    table: pd.DataFrame, label_names: Sequence[str], flagged: np.ndarray
) -> pd.DataFrame:
    """Per given class: samples, flagged (estimated noisy: in the review target's top), share
    flagged, and the decisions made (confirmed, relabeled, rejected).

    Args:
        table: one row per sample with ``label`` and ``status``.
        flagged: (N,) bool, the samples the review target flags.
    """
    labels = table["label"].to_numpy(dtype=np.int64)
    k = len(label_names)
    ok = (labels >= 0) & (labels < k)
    out = pd.DataFrame({"class": [str(n) for n in label_names]})
    out["samples"] = np.bincount(labels[ok], minlength=k)
    out["flagged"] = np.bincount(labels[ok & flagged], minlength=k)
    out["share_flagged"] = out["flagged"] / out["samples"].clip(lower=1)
    status = table["status"].astype(str).to_numpy()
    for decision in (CONFIRMED, RELABELED, REJECTED):
        out[decision] = np.bincount(labels[ok & (status == decision)], minlength=k)
    return out


def class_health_figure(data: pd.DataFrame) -> go.Figure:
    """Grouped bars per class: samples flagged and the decisions; hover gives the class size and
    its estimated noise. A bar's ``customdata`` is its class name."""
    fig = go.Figure()
    names = data["class"].tolist()
    hover = [
        f"{c}: {n:,} samples, {f:,} flagged ({s:.1%})"
        for c, n, f, s in zip(
            names, data["samples"], data["flagged"], data["share_flagged"], strict=True
        )
    ]
    for column, label in (
        ("flagged", "flagged (estimated noisy)"),
        (CONFIRMED, "confirmed"),
        (RELABELED, "relabeled"),
        (REJECTED, "rejected"),
    ):
        fig.add_bar(
            x=names,
            y=data[column],
            name=label,
            marker_color=COLORS[column],
            customdata=names,
            hovertext=hover,
            hovertemplate="%{hovertext}<br>" + label + ": %{y:,}<extra></extra>",
        )
    fig.update_layout(barmode="group")
    return _layout(fig, "Class health (click a class to review it)", "given class", "samples")


def given_pred_figure(counts: pd.DataFrame) -> go.Figure:
    """The given x predicted counts as a heatmap of squares (a scatter, so a click selects a
    cell); ``customdata`` = [given, predicted]. Off the diagonal: samples predicted as another
    class."""
    given, pred = np.meshgrid(counts.index.astype(str), counts.columns.astype(str), indexing="ij")
    values = counts.to_numpy().ravel()
    fig = go.Figure()
    fig.add_scatter(
        x=pred.ravel(),
        y=given.ravel(),
        mode="markers+text",
        text=[f"{v:,}" for v in values],
        textfont={"size": 10, "color": _text_colors(values)},
        marker={
            "symbol": "square",
            "size": max(14, min(48, 420 // max(1, len(counts)))),
            "color": np.log1p(values),
            "colorscale": "Blues",
            "showscale": False,
        },
        customdata=np.stack([given.ravel(), pred.ravel()], axis=1),
        hovertemplate="given %{y}, predicted %{x}: %{text}<extra></extra>",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="top")
    size = max(300, 90 + 34 * len(counts))
    fig = _layout(
        fig, "Given x predicted label (click a cell to review it)", "predicted", "given", size
    )
    fig.update_layout(margin={"t": 95}, title={"y": 0.98, "yanchor": "top"})
    return fig


def _text_colors(values: np.ndarray) -> list[str]:
    """White on the dark cells of a log-scaled Blues grid, dark on the light ones; the shade is
    normalised as plotly normalises the marker colours (min to max of the grid)."""
    logs = np.log1p(values.astype(np.float64))
    span = float(np.ptp(logs)) if len(logs) else 0.0
    shade = (logs - logs.min()) / span if span > 0 else np.ones_like(logs)
    return ["white" if s > 0.55 else "#222" for s in shade]


# ---- known noise: precision@k and the trim-and-retrain curve --------------------------------
def precision_at_k_data(
    ranks: dict[str, np.ndarray], flipped: np.ndarray, points: int = CURVE_POINTS
) -> pd.DataFrame:
    """Long table (method, k, precision): the share of flipped samples among each method's top
    k, for ``points`` values of k up to twice the number flipped (or N)."""
    flipped = np.asarray(flipped, dtype=bool)
    n = len(flipped)
    k_max = int(min(n, max(10, 2 * int(flipped.sum()))))
    ks = np.unique(np.linspace(1, k_max, min(points, k_max)).astype(np.int64))
    frames = []
    for method, rank in ranks.items():
        order = np.argsort(np.asarray(rank, dtype=np.float64), kind="stable")
        hits = np.cumsum(flipped[order])[ks - 1]
        frames.append(pd.DataFrame({"method": method, "k": ks, "precision": hits / ks}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def precision_figure(data: pd.DataFrame, n_flipped: int) -> go.Figure:
    """Precision@k per detector and baseline, the number of flipped samples marked."""
    fig = go.Figure()
    for method, part in data.groupby("method", sort=False):
        fig.add_scatter(x=part["k"], y=part["precision"], mode="lines", name=str(method))
    fig.add_vline(x=n_flipped, line_dash="dot", annotation_text="flipped samples")
    fig.update_layout(yaxis={"tickformat": ".0%", "range": [0, 1.02]})
    return _layout(fig, "Precision@k (known noise)", "k (top-ranked samples)", "flipped")


def retrain_data(retrain: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trim rows: method, trim_percent, accuracy, std; references: label, accuracy) from an
    evaluation report's ``retrain`` section (schema.RetrainResults)."""
    rows = pd.DataFrame(
        [
            {"method": r.method, "trim_percent": r.trim_percent, "accuracy": r.mean, "std": r.std}
            for r in retrain.rows
            if r.mean is not None
        ]
    )
    refs = pd.DataFrame(
        [
            {"label": r.label or r.method, "accuracy": r.mean}
            for r in retrain.references
            if r.mean is not None
        ]
    )
    return rows, refs


def retrain_figure(rows: pd.DataFrame, refs: pd.DataFrame) -> go.Figure:
    """Held-out accuracy after trimming each method's top k% and retraining; references (no
    trimming, the clean-label oracle) as horizontal lines."""
    fig = go.Figure()
    for method, part in rows.groupby("method", sort=False):
        part = part.sort_values("trim_percent")
        fig.add_scatter(
            x=part["trim_percent"],
            y=part["accuracy"],
            error_y={"type": "data", "array": part["std"].fillna(0)},
            mode="lines+markers",
            name=str(method),
        )
    for ref in refs.itertuples(index=False):
        fig.add_hline(y=ref.accuracy, line_dash="dot", annotation_text=str(ref.label))
    return _layout(fig, "Trim and retrain (held-out accuracy)", "trimmed (% of samples)", "acc.")


# ---- the run: training and steps --------------------------------------------------------------
def training_figure(epochs: Sequence[dict[str, float]]) -> go.Figure:
    """Training loss per epoch (left axis) and seconds per epoch (bars, right axis)."""
    frame = pd.DataFrame(list(epochs))
    fig = go.Figure()
    fig.add_bar(
        x=frame["epoch"],
        y=frame["seconds"],
        name="seconds",
        yaxis="y2",
        marker_color=COLORS["count"],
        opacity=0.5,
    )
    fig.add_scatter(x=frame["epoch"], y=frame["loss"], mode="lines+markers", name="training loss")
    fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "title": "seconds"})
    return _layout(fig, "Training loss per epoch", "epoch", "mean loss")


def steps_figure(steps: dict[str, dict[str, Any]], order: Sequence[str]) -> go.Figure:
    """Seconds per pipeline step (horizontal bars, pipeline order)."""
    names = [s for s in order if s in steps] + [s for s in steps if s not in order]
    seconds = [float(steps[s].get("seconds") or 0.0) for s in names]
    fig = go.Figure()
    fig.add_bar(
        y=names,
        x=seconds,
        orientation="h",
        marker_color=COLORS["flagged"],
        hovertemplate="%{y}: %{x:.1f} s<extra></extra>",
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Time per step", "seconds", "", max(220, 40 + 30 * len(names)))

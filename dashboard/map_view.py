"""The gradient map's data: what the canvas map component draws, and its selections → sample ids.

Up to :data:`FULL_POINTS_MAX` drawable samples the browser draws every sample as a point. Above
it the browser gets one image of all points (:mod:`dashboard.raster`: density, coloured like the
points; WebP, else PNG) plus the :data:`OVERLAY_POINTS` top-ranked samples as points. Either
way the top-ranked samples are drawn last (on top), outlined, the best one last of all; the
component (:mod:`dashboard.map_component`) keeps one data unit the same number of pixels on x
and y and shows a legend in every colouring (classes / statuses, a colour bar for the score).

Box and lasso selections come back as shapes in map coordinates and are turned into sample ids
from the coordinates of every drawn sample (:class:`raster.PointIndex`), for maps of every size
and in every colouring; a click comes back as the sample id of the point under the mouse.
"""

from __future__ import annotations

import base64
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard import raster
from dashboard.run_view import STATUSES, RunView, queue_order, status_codes

COLOR_BY_LABELS = {
    "score": "Detector score",
    "label": "Given label",
    "pred": "Predicted label",
    "status": "Review status",
    "issue": "Issue type",
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
NO_SCORE_COLOR = "#A7B1C2"
FULL_POINTS_MAX = 20_000  # above this many drawable samples the map is a raster + top points
OVERLAY_POINTS = 2_000  # top-ranked samples drawn as points over the raster
TOP_LAYER_MAX = 200  # at most this many top-ranked points (2%, at least 10) outlined on top
MAP_HEIGHT = 460  # css pixels of the map's canvas


@dataclass(frozen=True)
class MapLayer:
    """A drawn map and what turns a selection on it into sample ids.

    payload: the JSON-ready data the map component draws (see :func:`map_payload`). points:
    every drawn sample (finite x / y) for box / lasso queries. drawn_ids: (n_points,) the sample
    ids drawn as points, in drawing order (the last ``n_top`` outlined, the best-ranked last).
    raster: True when an image shows all samples and only the top-ranked ones are points.
    n_drawn: samples on the map; n_points: of those, drawn as points; n_top: of those, outlined.
    detail: on a raster map, the zoomed view [x0, x1, y0, y1] → a sharper image of just that
    view (:class:`_DetailRenderer`; None when the view is not zoomed in enough to need one).
    """

    payload: dict[str, Any]
    points: raster.PointIndex
    drawn_ids: np.ndarray
    raster: bool
    n_drawn: int
    n_points: int
    n_top: int
    detail: Callable[[Any], dict[str, Any] | None] | None = None


@dataclass(frozen=True)
class MapSelection:
    """What was picked on the map: ids (sorted; None = nothing), how (box / lasso / click), and
    the box or lasso in map units (x / y lists) to draw back on the map."""

    ids: list[int] | None
    kind: str | None
    shape: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Colouring:
    """Per-row colour groups: codes (n,) int index into names / colors; scores (n,) or None."""

    codes: np.ndarray
    names: list[str]
    colors: list[str]
    title: str
    scores: np.ndarray | None  # colours the points when colouring by score


def _colouring(
    view: RunView, color_by: str, score: np.ndarray | None, status: pd.Series | None
) -> _Colouring:
    table = view.table
    names = view.label_names
    palette = [CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(len(names))]
    if color_by == "status":
        codes = (
            status_codes(pd.DataFrame({"status": status})).astype(np.int64)
            if status is not None
            else np.zeros(len(table), dtype=np.int64)
        )
        codes[codes < 0] = 0
        colors = [STATUS_COLORS[s] for s in STATUSES]
        return _Colouring(codes, list(STATUSES), colors, "review status", None)
    if color_by == "issue":
        from dashboard.issue_view import load_issue_view

        issues = load_issue_view(view.path)
        if issues is not None:
            codes, names, colors = issues.codes(table["sample_id"].to_numpy())
            return _Colouring(codes, names, colors, "issue type", None)
    if color_by == "pred":
        codes = table["pred"].to_numpy(dtype=np.int64)
        return _Colouring(codes, names, palette, "predicted label", None)
    given = table["label"].to_numpy(dtype=np.int64)
    if color_by == "score" and score is not None:
        return _Colouring(given, names, palette, "score", score)
    return _Colouring(given, names, palette, "given label", None)


def build_map(
    view: RunView,
    *,
    color_by: str,
    detector: str | None,
    status: pd.Series | None = None,
    full_points_max: int = FULL_POINTS_MAX,
    overlay_points: int = OVERLAY_POINTS,
    first: np.ndarray | None = None,
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
        first: (m,) table rows of the queue under review when it is an issue type's (its
            first samples, in its order): they are the top-ranked ones (at most m outlined),
            the others follow in the detector's order. None: the detector's order.
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
    if first is not None:
        order = _queue_first(order, first)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))  # each row's place in the queue (0 = top-ranked)
    by_rank = order[np.isfinite(xs[order]) & np.isfinite(ys[order])]  # drawable rows, best first

    use_raster = len(drawn) > full_points_max
    shown = by_rank
    if use_raster:
        shown = by_rank[:overlay_points]
        if color_by == "status":  # reviewed samples stay visible as points
            reviewed = by_rank[colouring.codes[by_rank] != 0][:overlay_points]
            shown = np.concatenate([shown, np.setdiff1d(reviewed, shown)])
    top_n = min(TOP_LAYER_MAX, max(10, len(shown) // 50), len(shown))
    if first is not None:  # only the queue's own samples are outlined
        top_n = min(top_n, int(np.count_nonzero(np.isfinite(xs[first]) & np.isfinite(ys[first]))))
    top, rest = shown[:top_n], shown[top_n:]
    rest = _rest_order(rest, colouring.scores, position)
    top = top[np.argsort(-position[top], kind="stable")]  # the best-ranked drawn last
    rows = np.concatenate([rest, top]).astype(np.int64)
    extent = raster.map_extent(xs[drawn], ys[drawn])
    renderer = _DetailRenderer(colouring, xs[drawn], ys[drawn], drawn, extent)
    image = renderer.image(extent) if use_raster else None
    payload = map_payload(
        view,
        colouring,
        rows,
        n_top=len(top),
        score=score,
        extent=extent,
        image=image,
        detector=detector if score_col else None,
    )
    payload["n_drawn"] = len(drawn)
    payload["top_text"] = f"the queue's first {len(top):,}" if first is not None else None
    return MapLayer(
        payload=payload,
        points=raster.PointIndex.build(xs[drawn], ys[drawn], sids[drawn]),
        drawn_ids=sids[rows],
        raster=use_raster,
        n_drawn=len(drawn),
        n_points=len(rows),
        n_top=len(top),
        detail=renderer.detail if use_raster else None,
    )


def _queue_first(order: np.ndarray, first: np.ndarray) -> np.ndarray:
    """(n,) row positions: ``first`` (m,) in its order, then the rest of ``order`` in its own
    (O(n), no sort: the map of a million samples is built on a page load)."""
    taken = np.zeros(len(order), dtype=bool)
    taken[first] = True
    return np.concatenate([np.asarray(first, dtype=np.int64), order[~taken[order]]])


def _rest_order(rest: np.ndarray, scores: np.ndarray | None, position: np.ndarray) -> np.ndarray:
    """Drawing order of the points under the top layer: by score (highest last) when colouring
    by score, else worst-ranked first (better-ranked points drawn above)."""
    if scores is not None:
        return rest[np.argsort(np.nan_to_num(scores[rest], nan=-np.inf), kind="stable")]
    return rest[np.argsort(-position[rest], kind="stable")]


def _b64(values: np.ndarray, dtype: str) -> str:
    """An array as base64 of its little-endian bytes (decoded into a typed array in the page)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def _legend(colouring: _Colouring, detector: str | None) -> dict[str, Any]:
    """The legend: a colour bar (score) or one entry per class / status on the map."""
    if colouring.scores is not None:
        finite = colouring.scores[np.isfinite(colouring.scores)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        return {
            "kind": "scale",
            "title": f"{detector} score",
            "colors": raster.PLASMA,
            "range": [lo, hi],
            "missing": NO_SCORE_COLOR if len(finite) < len(colouring.scores) else None,
        }
    counts = np.bincount(colouring.codes, minlength=len(colouring.names))
    status = colouring.title == "review status"
    entries = [
        {
            "name": name,
            "color": colouring.colors[code],
            **({"count": int(counts[code])} if status else {}),
        }
        for code, name in enumerate(colouring.names)
        if status or counts[code] > 0
    ]
    return {"kind": "classes", "title": colouring.title, "entries": entries}


def map_payload(
    view: RunView,
    colouring: _Colouring,
    rows: np.ndarray,
    *,
    n_top: int,
    score: np.ndarray | None,
    extent: raster.Extent,
    image: str | None,
    detector: str | None,
) -> dict[str, Any]:
    """The JSON-ready data the map component draws.

    Per drawn point (``rows``: (k,) table rows in drawing order, the last ``n_top`` outlined),
    base64 little-endian arrays: x / y float32, sid float64, given / pred / code int32, value
    float32 (the colour value: score colouring only) and score float32 (on hover; NaN = none).
    ``colors`` per code (categorical colourings), ``labels`` the class names, ``extent``
    [x0, x1, y0, y1] in map units, ``image`` the raster (data URI, covering the extent) or None.
    """
    table = view.table
    sids = table["sample_id"].to_numpy(dtype=np.int64)
    values = colouring.scores
    return {
        "n": len(rows),
        "n_top": int(n_top),
        "x": _b64(table["x"].to_numpy(dtype=np.float64)[rows], "<f4"),
        "y": _b64(table["y"].to_numpy(dtype=np.float64)[rows], "<f4"),
        "sid": _b64(sids[rows], "<f8"),
        "given": _b64(table["label"].to_numpy(dtype=np.int64)[rows], "<i4"),
        "pred": _b64(table["pred"].to_numpy(dtype=np.int64)[rows], "<i4"),
        "code": _b64(colouring.codes[rows], "<i4"),
        "value": _b64(values[rows], "<f4") if values is not None else None,
        "score": _b64(score[rows], "<f4") if score is not None else None,
        "colors": None if values is not None else colouring.colors,
        "status_names": colouring.names if colouring.title == "review status" else None,
        "labels": list(view.label_names),
        "legend": _legend(colouring, detector),
        "radius": _radius(len(rows), image is not None),
        "extent": [extent.x0, extent.x1, extent.y0, extent.y1],
        "image": image,
        "raster": image is not None,
    }


def _radius(n_points: int, over_raster: bool) -> float:
    """Point radius in css pixels (outlined top points are drawn 1.5 px larger)."""
    if over_raster:
        return 2.0
    return 2.0 if n_points > 5_000 else 3.0 if n_points > 1_000 else 4.5


class _DetailRenderer:
    """Images of the map's samples over any extent, coloured like the points.

    xs / ys: (m,) coordinates of the drawn samples, rows: (m,) their table rows (for the
    colouring), extent: the whole map. The last few zoomed views are kept (a rerun of the page
    with the same view costs nothing).
    """

    MIN_ZOOM = 1.5  # a view this much smaller than the map gets its own image
    KEEP = 6

    def __init__(
        self,
        colouring: _Colouring,
        xs: np.ndarray,
        ys: np.ndarray,
        rows: np.ndarray,
        extent: raster.Extent,
    ) -> None:
        self.colouring, self.xs, self.ys, self.rows, self.extent = colouring, xs, ys, rows, extent
        self._cache: OrderedDict[tuple[float, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # one map layer serves every session

    def image(self, extent: raster.Extent, keep: np.ndarray | None = None) -> str:
        """The data URI of an image of the samples (``keep``: a mask of them) over ``extent``."""
        xs, ys, rows = self.xs, self.ys, self.rows
        if keep is not None:
            xs, ys, rows = xs[keep], ys[keep], rows[keep]
        shape = raster.raster_shape(extent)
        pix = raster.pixel_index(xs, ys, extent, shape)
        scores = self.colouring.scores
        if scores is not None:
            finite = scores[np.isfinite(scores)]
            lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
            lut = raster.colorscale_lut(raster.PLASMA)
            rgba = raster.continuous_rgba(pix, scores[rows], lut, (lo, hi), shape)
        else:
            codes = self.colouring.codes[rows]
            rgba = raster.categorical_rgba(pix, codes, self.colouring.colors, shape)
        return raster.image_data_uri(rgba)

    def detail(self, view: Any) -> dict[str, Any] | None:
        """``{"image": data URI, "extent": [x0, x1, y0, y1]}`` of the view [x0, x1, y0, y1] in
        map units (cut to the map), or None when it is no view or not zoomed in enough."""
        bounds = _finite_floats(view)
        if bounds is None or len(bounds) != 4:
            return None
        whole = self.extent
        x0, x1 = max(min(bounds[:2]), whole.x0), min(max(bounds[:2]), whole.x1)
        y0, y1 = max(min(bounds[2:]), whole.y0), min(max(bounds[2:]), whole.y1)
        if x1 <= x0 or y1 <= y0:
            return None
        # the image's pixels shrink by the ratio of the longer sides (see raster_shape)
        if max(whole.width, whole.height) / max(x1 - x0, y1 - y0) < self.MIN_ZOOM:
            return None
        key = (x0, x1, y0, y1)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        keep = (self.xs >= x0) & (self.xs <= x1) & (self.ys >= y0) & (self.ys <= y1)
        found = {"image": self.image(raster.Extent(*key), keep), "extent": list(key)}
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > self.KEEP:
                self._cache.popitem(last=False)
        return found


def _finite_floats(values: Any, limit: int = 10_000) -> list[float] | None:
    """``values`` as a list of finite floats, None when it is not one (or too long)."""
    if not isinstance(values, list | tuple) or len(values) > limit:
        return None
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return out if all(math.isfinite(v) for v in out) else None


def read_selection(value: Any, layer: MapLayer) -> MapSelection:
    """The sample ids picked on the map, from the map component's ``selection`` state.

    Args:
        value: ``{"kind": "box", "x": [x0, x1], "y": [y0, y1]}``, ``{"kind": "lasso", "x": [...],
            "y": [...]}`` (a closed polygon, >= 3 vertices) in map units, or ``{"kind": "click",
            "ids": [sample_id]}``; anything else (None, a malformed value) selects nothing.
        layer: the drawn map; box and lasso take every drawn sample inside them, a click only
            ids drawn on the map.
    """
    if not isinstance(value, dict):
        return MapSelection(None, None)
    kind = value.get("kind")
    if kind == "click":
        ids = _finite_floats(value.get("ids"), limit=100) or []
        wanted = np.array([int(v) for v in ids if v == int(v)], dtype=np.int64)
        found = np.intersect1d(wanted, layer.points.sample_ids)
        return MapSelection(found.tolist() or None, "click" if len(found) else None)
    xs, ys = _finite_floats(value.get("x")), _finite_floats(value.get("y"))
    if xs is None or ys is None or len(xs) != len(ys):
        return MapSelection(None, None)
    if kind == "box" and len(xs) == 2:
        found = layer.points.in_box((xs[0], xs[1]), (ys[0], ys[1]))
    elif kind == "lasso" and len(xs) >= 3:
        found = layer.points.in_polygon(np.asarray(xs), np.asarray(ys))
    else:
        return MapSelection(None, None)
    return MapSelection(found.astype(np.int64).tolist(), kind, {"kind": kind, "x": xs, "y": ys})

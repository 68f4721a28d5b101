"""Server-side drawing of big maps and the geometry of map selections. Torch-free, numpy + PIL.

A million points drawn one by one take seconds in a browser without a GPU; an image of the point
density (coloured by class, status or score) is drawn at once. Box and lasso selections come
back from the map component as shapes in map coordinates and are turned into sample ids here,
for maps of every size: a box by two comparisons, a lasso by the crossing-number rule over points
sorted by y (each polygon edge only looks at the points inside its y band).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

MAX_RASTER_PX = 900  # pixels along the longer side of the map's data extent
PLASMA = [  # matplotlib's plasma colour scale, 10 even stops (low → high)
    "#0d0887",
    "#46039f",
    "#7201a8",
    "#9c179e",
    "#bd3786",
    "#d8576b",
    "#ed7953",
    "#fb9f3a",
    "#fdca26",
    "#f0f921",
]


@dataclass(frozen=True)
class Extent:
    """The rectangle (in map units) a raster covers: x0 < x1, y0 < y1."""

    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def map_extent(xs: np.ndarray, ys: np.ndarray, pad: float = 0.02) -> Extent:
    """The bounding box of the points (finite (n,) arrays) with ``pad`` of its size around it."""
    if len(xs) == 0:
        return Extent(-1.0, 1.0, -1.0, 1.0)
    x0, x1 = float(np.min(xs)), float(np.max(xs))
    y0, y1 = float(np.min(ys)), float(np.max(ys))
    span = max(x1 - x0, y1 - y0, 1e-9)
    dx = max(x1 - x0, span * 1e-3) * pad + (span * 1e-3 if x1 == x0 else 0.0)
    dy = max(y1 - y0, span * 1e-3) * pad + (span * 1e-3 if y1 == y0 else 0.0)
    return Extent(x0 - dx, x1 + dx, y0 - dy, y1 + dy)


def raster_shape(extent: Extent, max_px: int = MAX_RASTER_PX) -> tuple[int, int]:
    """(height, width) in pixels with square pixels in map units; the longer side is ``max_px``."""
    if extent.width >= extent.height:
        return max(1, round(max_px * extent.height / extent.width)), max_px
    return max_px, max(1, round(max_px * extent.width / extent.height))


def pixel_index(xs: np.ndarray, ys: np.ndarray, extent: Extent, shape: tuple[int, int]):
    """The flat pixel index (row 0 = top) of each point, (n,) int64."""
    h, w = shape
    col = ((xs - extent.x0) / extent.width * w).astype(np.int64)
    row = ((extent.y1 - ys) / extent.height * h).astype(np.int64)
    return np.clip(row, 0, h - 1) * w + np.clip(col, 0, w - 1)


def _alpha(counts: np.ndarray) -> np.ndarray:
    """Opacity per pixel from its point count: empty 0, one point 0.45, densest 1 (log scale)."""
    top = max(float(counts.max(initial=0)), 1.0)
    alpha = 0.45 + 0.55 * np.log1p(counts) / np.log1p(top)
    return np.where(counts > 0, alpha, 0.0)


def _hex_rgb(colors: list[str]) -> np.ndarray:
    """'#RRGGBB' strings → (k, 3) float array in 0..255."""
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colors], dtype=float)


def colorscale_lut(colors: list[str], n: int = 256) -> np.ndarray:
    """(n, 3) float RGB lookup table interpolated evenly through the hex ``colors``."""
    stops = _hex_rgb(colors)
    at = np.linspace(0, len(stops) - 1, n)
    return np.stack([np.interp(at, np.arange(len(stops)), stops[:, c]) for c in range(3)], 1)


def categorical_rgba(
    pix: np.ndarray, codes: np.ndarray, palette: list[str], shape: tuple[int, int]
) -> np.ndarray:
    """(h, w, 4) uint8: each pixel the count-weighted mean colour of its points' categories.

    Args:
        pix: (n,) flat pixel index per point; codes: (n,) category 0..k-1 per point;
        palette: k '#RRGGBB' colours.
    """
    n_pix = shape[0] * shape[1]
    total = np.bincount(pix, minlength=n_pix).astype(float)
    point_rgb = _hex_rgb(palette)[codes]  # (n, 3)
    rgb = np.stack(
        [np.bincount(pix, weights=point_rgb[:, c], minlength=n_pix) for c in range(3)], axis=1
    ).astype(np.float64)
    rgb /= np.maximum(total, 1)[:, None]
    return _rgba(rgb, _alpha(total), shape)


def continuous_rgba(
    pix: np.ndarray,
    values: np.ndarray,
    lut: np.ndarray,
    value_range: tuple[float, float],
    shape: tuple[int, int],
) -> np.ndarray:
    """(h, w, 4) uint8: each pixel coloured by the HIGHEST value among its points.

    The maximum, not the mean, so that a lone high-scoring sample among many low ones still
    shows. ``values`` (n,) may hold NaN (drawn grey); ``lut`` is (m, 3) RGB over ``value_range``.
    """
    n_pix = shape[0] * shape[1]
    counts = np.bincount(pix, minlength=n_pix).astype(float)
    finite = np.isfinite(values)
    best = np.full(n_pix, -np.inf)
    np.maximum.at(best, pix[finite], values[finite])
    lo, hi = value_range
    scaled = (best - lo) / (hi - lo) if hi > lo else np.zeros(n_pix)
    idx = np.clip(np.nan_to_num(scaled, neginf=0.0) * (len(lut) - 1), 0, len(lut) - 1)
    rgb = lut[idx.astype(np.int64)]
    rgb[~np.isfinite(best)] = (167, 177, 194)  # pixels with only unscored points
    return _rgba(rgb, _alpha(counts), shape)


def _rgba(rgb: np.ndarray, alpha: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.empty((shape[0] * shape[1], 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.rint(rgb), 0, 255)
    out[:, 3] = np.clip(np.rint(alpha * 255), 0, 255)
    return out.reshape(shape[0], shape[1], 4)


def image_data_uri(rgba: np.ndarray) -> str:
    """A ``data:`` URI of an (h, w, 4) uint8 image: lossy WebP (quality 85, exact alpha) where
    Pillow has WebP — about half the bytes of a PNG of a million-point raster, and the browser
    has less to receive and decode — else PNG."""
    buffer = io.BytesIO()
    image = Image.fromarray(rgba, mode="RGBA")
    if features.check("webp"):
        image.save(buffer, format="WEBP", quality=85, method=0)
        kind = "webp"
    else:
        image.save(buffer, format="PNG", compress_level=1)
        kind = "png"
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ---- selection geometry --------------------------------------------------------------------
class PointIndex:
    """Map points for box and lasso queries; sorted by y on the first query (n,) arrays."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray, sample_ids: np.ndarray) -> None:
        self._raw = (xs, ys, sample_ids)
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def build(cls, xs: np.ndarray, ys: np.ndarray, sample_ids: np.ndarray) -> PointIndex:
        return cls(xs, ys, sample_ids)

    def __len__(self) -> int:
        return len(self._raw[0])

    def _by_y(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._sorted is None:
            xs, ys, ids = self._raw
            order = np.argsort(ys, kind="stable")
            self._sorted = (
                np.ascontiguousarray(xs[order], dtype=np.float64),
                np.ascontiguousarray(ys[order], dtype=np.float64),
                np.ascontiguousarray(ids[order], dtype=np.int64),
            )
        return self._sorted

    @property
    def xs(self) -> np.ndarray:
        return self._by_y()[0]

    @property
    def ys(self) -> np.ndarray:
        return self._by_y()[1]

    @property
    def sample_ids(self) -> np.ndarray:
        return self._by_y()[2]

    def in_box(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> np.ndarray:
        """Sample ids (sorted) of the points inside the box (edges included)."""
        (xa, xb), (ya, yb) = sorted(x_range), sorted(y_range)
        a = np.searchsorted(self.ys, ya, side="left")
        b = np.searchsorted(self.ys, yb, side="right")
        xs = self.xs[a:b]
        return np.sort(self.sample_ids[a:b][(xs >= xa) & (xs <= xb)])

    def in_polygon(self, poly_x: np.ndarray, poly_y: np.ndarray) -> np.ndarray:
        """Sample ids (sorted) of the points inside the closed polygon (crossing-number rule)."""
        px = np.asarray(poly_x, dtype=np.float64)
        py = np.asarray(poly_y, dtype=np.float64)
        if len(px) < 3:
            return np.empty(0, dtype=np.int64)
        lo_all = np.searchsorted(self.ys, py.min(), side="left")
        hi_all = np.searchsorted(self.ys, py.max(), side="right")
        inside = np.zeros(hi_all - lo_all, dtype=bool)
        for x1, y1, x2, y2 in zip(px, py, np.roll(px, -1), np.roll(py, -1), strict=True):
            if y1 == y2:
                continue
            # an edge counts for the points with min(y1, y2) <= y < max(y1, y2)
            a = np.searchsorted(self.ys, min(y1, y2), side="left")
            b = np.searchsorted(self.ys, max(y1, y2), side="left")
            if b <= a:
                continue
            ys, xs = self.ys[a:b], self.xs[a:b]
            cross = x1 + (ys - y1) * ((x2 - x1) / (y2 - y1))
            inside[a - lo_all : b - lo_all] ^= xs < cross
        return np.sort(self.sample_ids[lo_all:hi_all][inside])

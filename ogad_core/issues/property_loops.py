"""The compiled per-image loops of the registration images' properties (numba, as
:mod:`~ogad_core.issues.registration_loops`): the corrupt type's edge steps, empty lines and
frame lines, the flat share (the corrupt type's pixelation and the outlier type's input
statistics) and the object sizes (the outlier type's statistics column and size bonus). One
pass over each (side, side) image where numpy made a float32 copy and several (n, side, side)
temporaries a property (250,000 images: about 7 CPU s in numpy). Each computes in float32 as
numpy did; on uint8 images (exact integers in float32, so the sums' order does not matter)
the values are the same bits. Imported on first use.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def edge_steps_loop(images: np.ndarray, out: np.ndarray) -> None:
    """out (n, 4) float64: the largest one-pixel step of each (n, r, r) image along its
    columns, rows and two diagonals over its range (at least 1), in float32
    (:func:`~ogad_core.issues.corrupt.edge_steps`)."""
    n, r = images.shape[0], images.shape[1]
    for i in range(n):
        img = images[i]
        lo, hi = np.float32(np.inf), np.float32(-np.inf)
        down = across = diagonal = anti = np.float32(0)
        for y in range(r):
            for x in range(r):
                v = np.float32(img[y, x])
                lo, hi = min(lo, v), max(hi, v)
                if x > 0:
                    across = max(across, abs(v - np.float32(img[y, x - 1])))
                if y > 0:
                    down = max(down, abs(v - np.float32(img[y - 1, x])))
                    if x > 0:
                        diagonal = max(diagonal, abs(v - np.float32(img[y - 1, x - 1])))
                    if x < r - 1:
                        anti = max(anti, abs(np.float32(img[y - 1, x + 1]) - v))
        span = max(hi - lo, np.float32(1))
        out[i, 0], out[i, 1] = down / span, across / span
        out[i, 2], out[i, 3] = diagonal / span, anti / span


@njit(cache=True, nogil=True)
def empty_lines_loop(images: np.ndarray, tol: float, out: np.ndarray) -> None:
    """out (n,) float64: the smaller over rows and columns of the share of each (n, r, r)
    image's lines between neighbouring pixels, from the first to the last line whose change
    exceeds ``tol`` x its busiest line's, that do not
    (:func:`~ogad_core.issues.corrupt.empty_line_share`)."""
    n, r = images.shape[0], images.shape[1]
    rows = np.empty(r - 1, dtype=np.float32)
    cols = np.empty(r - 1, dtype=np.float32)
    for i in range(n):
        img = images[i]
        rows[:] = 0
        cols[:] = 0
        for y in range(r):
            for x in range(r):
                v = np.float32(img[y, x])
                if y > 0:
                    rows[y - 1] += abs(v - np.float32(img[y - 1, x]))
                if x > 0:
                    cols[x - 1] += abs(v - np.float32(img[y, x - 1]))
        out[i] = min(_empty_share(rows, tol), _empty_share(cols, tol))


@njit(cache=True, nogil=True)
def _empty_share(change: np.ndarray, tol: float) -> float:
    """The share of the (L,) per-line ``change`` totals at most ``tol`` x the largest (at
    least 1e-6, in float32), among the lines from the first to the last above that."""
    limit = np.float32(tol) * max(change.max(), np.float32(1e-6))
    first, last, quiet = len(change), -1, 0
    for k in range(len(change)):
        if change[k] > limit:
            first, last = min(first, k), k
    for k in range(first, last + 1):
        if not change[k] > limit:
            quiet += 1
    return quiet / max(last - first + 1, 1)


@njit(cache=True, nogil=True)
def frame_lines_loop(
    images: np.ndarray,
    background: np.ndarray,
    ink_share: float,
    touch: np.ndarray,
    far_empty: np.ndarray,
) -> None:
    """touch (n, 4) bool and far_empty (n, 4) int64 of (n, r, r) images: ink (at least
    ``ink_share`` x the image's largest distance from its (n,) ``background``, at least 1, in
    float32) on the top, bottom, left and right edge line, and the lines without ink counted in
    from the opposite edge (:func:`~ogad_core.issues.corrupt.frame_lines`)."""
    n, r = images.shape[0], images.shape[1]
    rows = np.empty(r, dtype=np.bool_)
    cols = np.empty(r, dtype=np.bool_)
    for i in range(n):
        img, bg = images[i], np.float32(background[i])
        largest = np.float32(0)
        for y in range(r):
            for x in range(r):
                largest = max(largest, abs(np.float32(img[y, x]) - bg))
        limit = np.float32(ink_share) * max(largest, np.float32(1))
        rows[:] = False
        cols[:] = False
        for y in range(r):
            for x in range(r):
                if abs(np.float32(img[y, x]) - bg) >= limit:
                    rows[y] = cols[x] = True
        # each edge line read in from its edge: its ink, and the empty lines from the far edge
        touch[i, 0], far_empty[i, 0] = rows[0], _run_from(rows, r - 1, -1)
        touch[i, 1], far_empty[i, 1] = rows[r - 1], _run_from(rows, 0, 1)
        touch[i, 2], far_empty[i, 2] = cols[0], _run_from(cols, r - 1, -1)
        touch[i, 3], far_empty[i, 3] = cols[r - 1], _run_from(cols, 0, 1)


@njit(cache=True, nogil=True)
def _run_from(line: np.ndarray, start: int, step: int) -> int:
    """The (r,) bool ``line``'s False entries from ``start`` stepping by ``step`` before its
    first True (0 when none is True, as numpy's argmax of all False)."""
    k, count = start, 0
    while 0 <= k < len(line):
        if line[k]:
            return count
        k += step
        count += 1
    return 0


@njit(cache=True, nogil=True)
def flat_share_loop(
    images: np.ndarray, low: float, high: float, equal: float, out: np.ndarray
) -> None:
    """out (n,) float64: the share of the neighbouring pixel pairs (along rows and columns) of
    each (n, r, r) image, rescaled to [0, 1] from its darkest to its brightest (float32), that
    touch a pixel strictly between ``low`` and ``high`` and differ by at most ``equal``
    (:func:`~ogad_core.issues.features.flat_share`)."""
    n, r = images.shape[0], images.shape[1]
    lo32, hi32, eq32 = np.float32(low), np.float32(high), np.float32(equal)
    scaled = np.empty((r, r), dtype=np.float32)
    for i in range(n):
        img = images[i]
        darkest, brightest = np.float32(np.inf), np.float32(-np.inf)
        for y in range(r):
            for x in range(r):
                darkest = min(darkest, np.float32(img[y, x]))
                brightest = max(brightest, np.float32(img[y, x]))
        span = max(brightest - darkest, np.float32(1))
        for y in range(r):
            for x in range(r):
                scaled[y, x] = (np.float32(img[y, x]) - darkest) / span
        touched = same = 0
        for y in range(r):
            for x in range(r):
                v = scaled[y, x]
                mid = v > lo32 and v < hi32
                for dy, dx in ((0, 1), (1, 0)):
                    if y + dy < r and x + dx < r:
                        w = scaled[y + dy, x + dx]
                        if mid or (w > lo32 and w < hi32):
                            touched += 1
                            if abs(w - v) <= eq32:
                                same += 1
        out[i] = same / max(np.float64(touched), 1.0)


@njit(cache=True, nogil=True)
def _median_and_span(img: np.ndarray, hist: np.ndarray) -> tuple[np.float32, np.float32]:
    """The float32 median of an (r, r) uint8 image (the mean of the two middle values for an
    even count, as numpy's) and its range (brightest - darkest, at least 1), from a 256-bin
    histogram (``hist``, (256,) int64, overwritten)."""
    r = img.shape[0]
    hist[:] = 0
    for y in range(r):
        for x in range(r):
            hist[img[y, x]] += 1
    darkest, brightest = 0, 255
    while hist[darkest] == 0:
        darkest += 1
    while hist[brightest] == 0:
        brightest -= 1
    low_rank, high_rank = (r * r - 1) // 2, (r * r) // 2  # the middle values' sorted ranks
    low_value, high_value, seen = -1, -1, 0
    for v in range(256):
        seen += hist[v]
        if low_value < 0 and seen > low_rank:
            low_value = v
        if seen > high_rank:
            high_value = v
            break
    span = max(np.float32(brightest) - np.float32(darkest), np.float32(1))
    return np.float32((low_value + high_value) / 2.0), span


@njit(cache=True, nogil=True)
def object_sizes_loop(images: np.ndarray, levels: np.ndarray, out: np.ndarray) -> None:
    """out (n, L) float64: for each (n, r, r) uint8 image and each of the (L,) ``levels``, the
    larger side (px) of the box around its pixels at least that level of its range (float32:
    brightest - darkest, at least 1) from its median (:func:`_median_and_span`), 0 without
    any (:func:`~ogad_core.issues.features.object_sizes`): one pass for every level."""
    n, r, n_levels = images.shape[0], images.shape[1], len(levels)
    hist = np.empty(256, dtype=np.int64)
    box = np.empty((n_levels, 4), dtype=np.int64)  # first row, last row, first col, last col
    limit = np.empty(n_levels, dtype=np.float32)
    for i in range(n):
        img = images[i]
        background, span = _median_and_span(img, hist)
        for k in range(n_levels):
            limit[k] = np.float32(levels[k]) * span
            box[k, 0], box[k, 1], box[k, 2], box[k, 3] = r, -1, r, -1
        for y in range(r):
            for x in range(r):
                away = abs(np.float32(img[y, x]) - background)
                for k in range(n_levels):
                    if away >= limit[k]:
                        box[k, 0], box[k, 1] = min(box[k, 0], y), max(box[k, 1], y)
                        box[k, 2], box[k, 3] = min(box[k, 2], x), max(box[k, 3], x)
        for k in range(n_levels):
            side = max(box[k, 1] - box[k, 0], box[k, 3] - box[k, 2]) + 1
            out[i, k] = 0.0 if box[k, 1] < 0 else float(side)

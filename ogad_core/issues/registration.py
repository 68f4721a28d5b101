"""Image registration of candidate pairs: is one image a shifted, rotated or rescaled copy of
the other? Torch-free, batched over pairs (the coarse grid, the warps and the refinement in
numba loops).

Each pair (a, b) of R x R grayscale images is aligned by a similarity transform of b (rotation,
scale, shift about the centre), as in image matching's geometric verification:

1. *coarse*: at half resolution, b rotated or scaled over a small grid (:data:`GRID`), each
   warp correlated with a at every shift up to :data:`MAX_SHIFT` (a dot product each):
   the best (angle, scale, shift);
2. *refine*: Lucas-Kanade (Gauss-Newton) from the coarse optimum, at half and then at full
   resolution, the transform's four parameters with a gain and an offset of the intensities.

Most candidate pairs are two different images: they stop after the coarse grid or after a
Gauss-Newton step whose NCC is far below every copy's at that step (early rejection), so only
look-alikes pay for the whole refinement.

The result is the normalised correlation (NCC, zero mean) of a and the aligned b: a transformed
copy aligns up to its resampling error (1 - NCC below about 0.005 at 32 x 32), two different
handwritten digits of one class do not (1 - NCC above about 0.008 for the closest pairs, mostly
two straight "1"s). A copy made by a light blur aligns as well, but its residual is the blur:
such a pair (the sharper image 1.5 x as sharp or more) is compared once more with its aligned
image blurred to the other's sharpness (:func:`matched_blur`). scikit-image's
``registration.phase_cross_correlation`` finds one pair's shift per call; here thousands of
pairs go through each product and gather at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np

from ogad_core._internal import worker_count

#: the coarse grid: (rotation in degrees, scale) of each warp tried, a rotation or a rescale
#: (the 4 corners of the 3 x 3 grid of both, 44% of its warps, aligned no further copy:
#: rotated and rescaled digits at once converge from a rotation or a rescale alike)
GRID = ((0.0, 1.0), (-8.0, 1.0), (8.0, 1.0), (0.0, 0.9), (0.0, 1.1))
#: the coarse grid's largest shift searched, in half-resolution pixels
MAX_SHIFT = 2
#: Gauss-Newton steps of the refinement at half and at full resolution
HALF_STEPS = 5
FULL_STEPS = 3
#: pairs go on to the half-resolution refinement at this coarse NCC (transformed copies of
#: digits: 0.87 at the lowest), to full resolution at this refined one (0.975 at the lowest)
GATE = 0.8
HALF_GATE = 0.97
#: early rejection within the refinements: a pair stops after k Gauss-Newton steps below
#: HALF_GATES[k] at half resolution, FULL_GATES[k] at full (the NCC of transformed copies of
#: digits on the kept runs, at the lowest: 0.869, 0.938, 0.965, 0.970 after 0-3 half steps;
#: 0.984, 0.994 after 0-1 full steps); most candidate pairs, two different digits, stay far
#: below and skip the later steps
HALF_GATES = (0.8, 0.9, 0.93, 0.95)
FULL_GATES = (0.97, 0.98)
#: sharpness matching: a copy made by a light blur (a softened re-export, a resized thumbnail) is
#: blurrier than its source by more than the alignment's resampling, so its residual is the blur,
#: not the alignment. A pair whose sharper image has BLUR_RATIO times the other's
#: :func:`sharpness` or more (a copy blurred by 0.5 px: 1.5 at the lowest, 0.7 px: 2.2, 1 px: 3.7;
#: a rotated copy 1.3-1.8, verified without it), aligned at full resolution to an NCC of at least
#: BLUR_GATE (the full-resolution gates stop most blurred copies: 1 px of blur, 0.91 at the lowest)
#: and not verified, has its aligned image blurred by a Gaussian of each sigma of
#: :func:`matched_blur` (BLUR_SCALES x sqrt(ln of the ratio), within BLUR_LIMITS: pixels at
#: R = 32) and keeps the best NCC: two different digits of one class stay apart (their residual
#: is their shapes)
BLUR_RATIO = 1.5
BLUR_GATE = 0.9
BLUR_SCALES = (0.7, 0.82, 0.94)
BLUR_LIMITS = (0.3, 1.6)
#: a Gauss-Newton step that takes a transform parameter beyond this (pixels, or the rotation
#: and scale's a, s) has diverged: the pair stops as no copy (the compiled passes use fast
#: math, which assumes finite coordinates)
THETA_LIMIT = 1e3
#: images a thread prepares at a time (about CHUNK x R^2 x 12 bytes of temporaries: 6 MB at
#: R = 32, in the CPU's cache; 16,384 images over all threads, 200 MB, made the same halves
#: 3x slower: 100,000 images 2.5 -> 0.8 CPU s)
CHUNK = 512
#: pairs aligned per batch (memory: about BATCH x len(GRID) x R^2 / 4 floats)
BATCH = 256


def neighbour_pairs(idx: np.ndarray, *, undirected: bool) -> np.ndarray:
    """(M, 2) unique int64 pairs (i, idx[i, j]) of an (N, k) neighbour index (-1: none);
    ``undirected`` (one set of images): each pair once as (low, high), none with itself."""
    rows = np.repeat(np.arange(len(idx), dtype=np.int64), idx.shape[1])
    cols = np.asarray(idx).ravel().astype(np.int64)
    keep = (cols >= 0) & ~(undirected & (cols == rows))
    first, second = rows[keep], cols[keep]
    if undirected:
        first, second = np.minimum(first, second), np.maximum(first, second)
    return _unique_pairs(first, second)


def _unique_pairs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(M, 2) int64 distinct pairs of (P,) non-negative int64 ``first`` and ``second``, in
    lexicographic order (as ``np.unique(axis=0)``): one int64 key a pair, sorted, repeats
    dropped (numpy 2.4's unique of rows sorts a structured view, and its 1-D unique hashes:
    both about 10x slower than a sort at millions of pairs)."""
    base = int(max(first.max(initial=0), second.max(initial=0))) + 1
    keys = np.sort(first * base + second)
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return np.column_stack(np.divmod(keys, base)).astype(np.int64).reshape(-1, 2)


def standardise(x: np.ndarray) -> np.ndarray:
    """(P, M) float32 rows of (P, ...) images with zero mean and unit length."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def tent(x: np.ndarray) -> np.ndarray:
    """(P, r, r) images smoothed by a separable [1, 2, 1] / 4 tent (edges repeated)."""
    p, r, _ = x.shape
    pad = np.empty((p, r + 2, r + 2), dtype=np.result_type(x, np.float32))
    pad[:, 1:-1, 1:-1] = x  # np.pad(mode="edge") by slices: 3x cheaper
    pad[:, 0, 1:-1], pad[:, -1, 1:-1] = x[:, 0], x[:, -1]
    pad[:, :, 0], pad[:, :, -1] = pad[:, :, 1], pad[:, :, -2]
    x = (pad[:, :-2] + 2 * pad[:, 1:-1] + pad[:, 2:]) / 4
    return (x[:, :, :-2] + 2 * x[:, :, 1:-1] + x[:, :, 2:]) / 4


def sharpness(x: np.ndarray) -> np.ndarray:
    """(P,) mean squared 4-neighbour Laplacian of (P, r, r) images over their variance: a
    resampled (rotated, rescaled, shifted by a fraction) copy is blurrier than its source,
    and the source, warped onto it, is blurred alike."""
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return (lap**2).mean(axis=(1, 2)) / np.maximum(x.var(axis=(1, 2)), 1e-12)


def half(x: np.ndarray) -> np.ndarray:
    """(P, R/2, R/2) images at half resolution: (P, R, R) images smoothed by :func:`tent`,
    then 2 x 2 means (a shifted copy stays nearly a shifted copy), summed in pairs as
    numpy's mean over the two axes does (the same values, 7x cheaper than that mean)."""
    t = tent(x)
    return ((t[:, 0::2, 0::2] + t[:, 0::2, 1::2]) + (t[:, 1::2, 0::2] + t[:, 1::2, 1::2])) / 4


@lru_cache(maxsize=4)
def _grid(r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sampling of an r x r image under every coarse (angle, scale): (G * r * r, 4)
    flat indices and (G * r * r, 4) float32 weights of each warped pixel's corners (clamped
    to the edge; warp g's pixels are rows g * r * r onwards), and the (G, 2) (angle, scale)
    of each."""
    c = (r - 1) / 2
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float64) - c
    corners, weights = [], []
    for angle, scale in GRID:
        t = np.deg2rad(angle)
        ca, sa = np.cos(t) / scale, np.sin(t) / scale
        idx, w = _corners((ca * xx - sa * yy + c).ravel(), (sa * xx + ca * yy + c).ravel(), r)
        corners.append(idx.T)
        weights.append(w.T)
    return (
        np.ascontiguousarray(np.concatenate(corners), dtype=np.int32),
        np.ascontiguousarray(np.concatenate(weights), dtype=np.float32),
        np.array(GRID, dtype=np.float64),
    )


def _corners(x: np.ndarray, y: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(4, ...) flat indices and (4, ...) weights of the bilinear corners of points (x, y) in
    an r x r image, coordinates clamped to the image."""
    x = np.clip(x, 0, r - 1)
    y = np.clip(y, 0, r - 1)
    x0 = np.minimum(np.floor(x), r - 2).astype(np.int64)
    y0 = np.minimum(np.floor(y), r - 2).astype(np.int64)
    fx, fy = x - x0, y - y0
    idx = np.stack([y0 * r + x0, y0 * r + x0 + 1, (y0 + 1) * r + x0, (y0 + 1) * r + x0 + 1])
    w = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    return idx, w


@lru_cache(maxsize=4)
def _rolls(r: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, (r + 2 * MAX_SHIFT) * r) flat indices of an r x r image rolled by each shift dx
    searched along x, with MAX_SHIFT rows wrapped round above and below (rows MAX_SHIFT - dy
    onwards of it: the image rolled by (dy, dx)), and the (S,) shifts (2 * MAX_SHIFT + 1,
    in pixels)."""
    shifts = np.r_[0 : MAX_SHIFT + 1, -MAX_SHIFT:0]
    y = np.arange(-MAX_SHIFT, r + MAX_SHIFT)[:, None] % r
    x = np.arange(r)[None, :]
    return np.stack([(y * r + (x - dx) % r).ravel() for dx in shifts]).astype(np.int32), shifts


def coarse(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best grid alignment of b onto a, (P, r, r) images each: (P,) NCC and (P, 4) parameters
    (angle in degrees, scale, shift x, shift y in pixels of these images). The circular
    cross-correlation of each warp of b with a at the few shifts searched, both standardised,
    a dot product a shift (a rolled by it; its rows have zero mean, so the warps need only
    their norms), in one compiled loop a pair (:func:`_coarse_loop`; numpy's gathers of the
    rolled copies took as long as its products, 11 -> 4.5 CPU us a pair)."""
    p, r, _ = a.shape
    corners, weights, params = _grid(r)
    columns, shifts = _rolls(r)
    score = np.empty(p, dtype=np.float32)
    best = np.empty(p, dtype=np.int64)
    flat_a = np.ascontiguousarray(a, dtype=np.float32).reshape(p, -1)
    flat_b = np.ascontiguousarray(b, dtype=np.float32).reshape(p, -1)
    _coarse_loop()(flat_a, flat_b, corners, weights, columns, shifts, score, best)
    g, rest = np.divmod(best, len(shifts) ** 2)
    sy, sx = np.divmod(rest, len(shifts))
    found = np.column_stack([params[g, 0], params[g, 1], shifts[sx], shifts[sy]])
    return score.astype(np.float64), found.astype(np.float64)


@lru_cache(maxsize=1)
def _coarse_loop() -> Any:
    """The compiled :func:`coarse` (:func:`~ogad_core.issues.registration_loops.coarse_loop`;
    numba imported and the loop compiled on first use, cached on disk)."""
    from ogad_core.issues.registration_loops import coarse_loop

    return coarse_loop


def warp(images: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(P, C, r*r) float32: images (P, C, r, r) sampled (bilinear, clamped) at
    x' = c + a u - s v + tx, y' = c + s u + a v + ty for centred output coordinates (u, v);
    ``theta`` (P, 4) holds (a, s, tx, ty), one transform for a pair's C channels. A compiled
    loop (numba, UMAP's own compiler): the gathers and the interpolation of numpy's version
    took 60% of a Gauss-Newton step in temporaries."""
    p, ch, r, _ = images.shape
    out = np.empty((p, ch, r * r), dtype=np.float32)
    _warp_loop()(
        np.ascontiguousarray(images, dtype=np.float32),
        np.ascontiguousarray(theta, dtype=np.float32),
        out,
    )
    return out


@lru_cache(maxsize=1)
def _warp_loop() -> Any:
    """The compiled bilinear sampling of :func:`warp`
    (:func:`~ogad_core.issues.registration_loops.warp_loop`; numba imported and the loop
    compiled on first use, cached on disk)."""
    from ogad_core.issues.registration_loops import warp_loop

    return warp_loop


def refine(
    a: np.ndarray, b: np.ndarray, theta: np.ndarray, steps: int, gates: tuple[float, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton alignment of b onto a, (P, r, r) images, from ``theta`` (P, 4): (a, s, tx,
    ty) of :func:`warp` in pixels of these images. Returns (P,) NCC after it and the (P, 4)
    transform. ``gates[k]``: a pair whose NCC after k steps (0: at ``theta``) is below it
    stops there (early rejection; it keeps that NCC and transform); a pair whose transform
    leaves :data:`THETA_LIMIT` (or is not finite) stops with NCC -1 (no copy). One compiled
    loop a pair (:func:`_refine_loop`): the warps, the Jacobian's normal equations and the
    NCC sums in one pass over the pixels, without a (P, M, 6) Jacobian in memory, in fast
    math (vectorised sums; the limit keeps its coordinates finite). b and its x, y gradients
    (:func:`numpy.gradient`'s, bit for bit) are stacked by a compiled loop too, outside the GIL
    (numpy's gradient and stack were a third of the work between the compiled loops, the
    part that the verification's threads cannot run at once)."""
    channels = np.empty((len(b), 3, *b.shape[1:]), dtype=np.float32)
    _gradient_loop()(np.ascontiguousarray(b, dtype=np.float32), channels)
    target = np.ascontiguousarray(a, dtype=np.float32)
    score = np.zeros(len(a), dtype=np.float32)
    theta = np.array(theta, dtype=np.float64)
    _refine_loop()(channels, target, theta, int(steps), np.asarray(gates, np.float64), score)
    return score, theta


@lru_cache(maxsize=1)
def _gradient_loop() -> Any:
    """The compiled image and gradients of :func:`refine`
    (:func:`~ogad_core.issues.registration_loops.gradient_loop`; cached on disk)."""
    from ogad_core.issues.registration_loops import gradient_loop

    return gradient_loop


@lru_cache(maxsize=1)
def _refine_loop() -> Any:
    """The compiled :func:`refine` (:func:`~ogad_core.issues.registration_loops.refine_loop`:
    for each pair, each step warps b and, at a gated step, stops the pair when the NCC is below
    the gate; else it takes a Gauss-Newton step; returns the pixels sampled)."""
    from ogad_core.issues.registration_loops import refine_loop

    return refine_loop


def start_transform(found: np.ndarray) -> np.ndarray:
    """(P, 4) (a, s, tx, ty) of :func:`warp` from :func:`coarse`'s (angle, scale, dx, dy):
    a(u) = b(M (u + d)), so the shift in b's frame is M d."""
    t = np.deg2rad(found[:, 0])
    ca, sa = np.cos(t) / found[:, 1], np.sin(t) / found[:, 1]
    dx, dy = found[:, 2], found[:, 3]
    return np.column_stack([ca, sa, ca * dx - sa * dy, sa * dx + ca * dy])


def aligned_correlation(
    images: np.ndarray,
    pairs: np.ndarray,
    gate: float = GATE,
    half_gate: float = HALF_GATE,
    *,
    blur_from: float | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """(P,) NCC of each pair (i, j) of ``pairs`` (P, 2) of ``images`` (N, R, R) uint8 (R
    even) after aligning the sharper of the two onto the other: the coarse grid and
    HALF_STEPS Gauss-Newton steps at half resolution, then FULL_STEPS at full resolution, the
    NCC of both :func:`tent`-smoothed. A pair whose NCC stays below ``gate`` (coarse),
    ``half_gate`` (refined at half resolution) or a gate of :data:`HALF_GATES` /
    :data:`FULL_GATES` between the steps keeps that value: no copy. Each image's half
    resolution and sharpness are prepared once (:func:`prepare`; an image is in about 26
    pairs, which at scale fall in as many batches). The batches of BATCH pairs run on
    ``workers`` threads (default :func:`~ogad_core._internal.worker_count`; the compiled
    loops release the GIL): each pair's NCC is the same whatever the number of threads.
    ``blur_from``: a pair aligned at full resolution (NCC at least :data:`BLUR_GATE`), its
    sharper image :data:`BLUR_RATIO` times as sharp as the other or more, whose 1 - NCC is at
    least this takes the best NCC of its aligned image blurred to the other's sharpness
    (:func:`matched_blur`; None: no sharpness matching)."""
    pairs = np.asarray(pairs, dtype=np.int64)
    out = np.zeros(len(pairs), dtype=np.float64)
    if not len(pairs):
        return out
    threads = thread_count(workers)
    halves, sharp = prepare(images, workers=threads)

    oriented, order = _by_warped_image(pairs, sharp)

    def align_batch(start: int) -> None:
        part = oriented[start : start + BATCH]
        out[order[start : start + len(part)]] = _align(
            images, (halves, sharp), part, (gate, half_gate), blur_from
        )

    in_threads(align_batch, range(0, len(pairs), BATCH), threads)
    return out


def _by_warped_image(pairs: np.ndarray, sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, 2) ``pairs`` oriented to warp the sharper image (``sharp``: (N,) :func:`sharpness`)
    onto the other, ordered by the warped image (the pairs of one image next to each other:
    its coarse warps are made once), and the (P,) rows of ``pairs`` they are, in that order."""
    swap = sharp[pairs[:, 0]] > sharp[pairs[:, 1]]
    oriented = np.where(swap[:, None], pairs[:, ::-1], pairs)
    order = np.lexsort((oriented[:, 0], oriented[:, 1]))
    return oriented[order], order


def thread_count(workers: int | None) -> int:
    """Threads of the verification: ``workers`` (the ``--workers`` option; 0 is this thread
    alone) or, by default, :func:`~ogad_core._internal.worker_count`."""
    return worker_count() if workers is None else max(1, int(workers))


def in_threads(work: Callable[[int], None], starts: range, threads: int) -> None:
    """``work(start)`` for each of ``starts`` on up to ``threads`` threads (each call writes
    its own slice of the output, so the order they run in changes nothing); an exception in
    one is raised here."""
    if threads <= 1 or len(starts) <= 1:
        for start in starts:
            work(start)
        return
    with ThreadPoolExecutor(min(threads, len(starts))) as pool:
        for _ in pool.map(work, starts):
            pass


def prepare(images: np.ndarray, *, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(N, R/2, R/2) float32 :func:`half` images and (N,) :func:`sharpness` of (N, R, R) uint8
    ``images``, CHUNK images at a time on each of ``workers`` threads (numpy's loops release
    the GIL; 1 KB an image at R = 32)."""
    n, r = len(images), images.shape[1]
    halves = np.empty((n, r // 2, r // 2), dtype=np.float32)
    sharp = np.empty(n, dtype=np.float32)

    def prepare_chunk(lo: int) -> None:
        full = _unit_range(images, np.arange(lo, min(n, lo + CHUNK)))
        halves[lo : lo + len(full)], sharp[lo : lo + len(full)] = half(full), sharpness(full)

    in_threads(prepare_chunk, range(0, n, CHUNK), workers)
    return halves, sharp


def _unit_range(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(M, R, R) float32 in [0, 1]: the uint8 ``images`` of ``rows`` (M,)."""
    return np.asarray(images[rows], dtype=np.float32) / 255


def _align(
    images: np.ndarray,
    prepared: tuple[np.ndarray, np.ndarray],
    pairs: np.ndarray,
    gates: tuple[float, float],
    blur_from: float | None,
) -> np.ndarray:
    """(P,) NCC of one batch of image pairs (P, 2) (b = the second aligned onto a = the first)
    of ``images`` (N, R, R) uint8, ``prepared``: their :func:`half` images and sharpness (see
    :func:`aligned_correlation`; ``gates``: its coarse and half-resolution gates); the full
    images are read only for the pairs that reach full resolution (a few percent)."""
    halves, sharp = prepared
    ha, hb = halves[pairs[:, 0]], halves[pairs[:, 1]]
    score, found = coarse(ha, hb)
    go = np.flatnonzero(score >= gates[0])
    if not len(go):
        return score
    refined, theta = refine(ha[go], hb[go], start_transform(found[go]), HALF_STEPS, HALF_GATES)
    score[go] = refined
    keep = refined >= gates[1]
    go, theta = go[keep], theta[keep]
    if not len(go):
        return score
    a, b = _unit_range(images, pairs[go, 0]), _unit_range(images, pairs[go, 1])
    theta[:, 2:] *= 2  # centred coordinates: full = 2 x half, so the shift doubles
    refined, theta = refine(a, b, theta, FULL_STEPS, FULL_GATES)
    score[go] = refined
    final = refined >= FULL_GATES[-1]
    blurred = np.zeros(len(go), dtype=bool)
    if blur_from is not None:
        blurred = _blurred_copy(sharp, pairs[go], refined)
    keep = final | blurred
    go, theta, a, b = go[keep], theta[keep], a[keep], b[keep]
    final, blurred = final[keep], blurred[keep]
    if not len(go):
        return score
    aligned = warp(b[:, None], theta)[:, 0].reshape(a.shape)
    smooth_a = standardise(tent(a))
    if final.any():
        score[go[final]] = np.einsum(
            "pm,pm->p", smooth_a[final], standardise(tent(aligned[final]))
        )  # the smoothing leaves out most of the resampling error, not a shape's difference
    if blur_from is not None:
        near = np.flatnonzero(blurred & (1.0 - score[go] >= blur_from))
        ratio = sharp[pairs[go[near], 1]] / np.maximum(sharp[pairs[go[near], 0]], 1e-12)
        matched = matched_blur(smooth_a[near], aligned[near], ratio)
        score[go[near]] = np.maximum(score[go[near]], matched)
    return score


def _blurred_copy(sharp: np.ndarray, pairs: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """(P,) bool: pairs (P, 2) (b aligned onto a) whose b is :data:`BLUR_RATIO` times as sharp
    as a or more (``sharp``: (N,) :func:`sharpness`) and aligned at full resolution to an NCC
    (``refined``, (P,)) of :data:`BLUR_GATE` or more: a copy made by a blur could be one."""
    sharper = sharp[pairs[:, 1]] >= BLUR_RATIO * sharp[pairs[:, 0]]
    return np.asarray(sharper & (refined >= BLUR_GATE), dtype=bool)


def matched_blur(smooth_a: np.ndarray, aligned: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """(P,) best NCC of (P, M) :func:`standardise`-d :func:`tent`-smoothed images a and the
    (P, R, R) images aligned onto them, each blurred by a Gaussian, then smoothed alike: a copy
    that was blurred (a softened re-export, a resized thumbnail) is blurrier than its source by
    more than the alignment's resampling, and the source blurred alike aligns with it. The
    sigmas tried: :data:`BLUR_SCALES` x sqrt(ln ``ratio``), (P,) the aligned image's
    :func:`sharpness` over a's (blurred copies of digits by 0.4-1 px: the best sigma at 0.65-0.92
    x that), within :data:`BLUR_LIMITS`. One compiled loop a pair
    (:func:`~ogad_core.issues.registration_loops.blur_ncc_loop`)."""
    from ogad_core.issues.registration_loops import blur_ncc_loop

    root = np.sqrt(np.log(np.maximum(np.asarray(ratio, np.float64), 1.0)))
    sigmas = np.clip(root[:, None] * np.array(BLUR_SCALES), *BLUR_LIMITS)
    best = np.empty(len(aligned), dtype=np.float32)
    blur_ncc_loop(
        np.ascontiguousarray(smooth_a, dtype=np.float32),
        np.ascontiguousarray(aligned, dtype=np.float32),
        sigmas,
        best,
    )
    return best

"""The compiled loops of :mod:`ogad_core.issues.registration` (numba, UMAP's own compiler):
the coarse grid search, the bilinear warp, the NCC of a warped image, the Gauss-Newton step and
the refinement that runs them a pair at a time. Module-level functions, so that numba's
on-disk cache serves them in a new process (compiled inside a function, each loop kept its
callees as closure variables, which numba's cache key pickles anew in every process: the
refinement compiled again in each one, about 6 CPU s). Imported by registration on first use.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ogad_core.issues.registration import THETA_LIMIT


@njit(cache=True, nogil=True, fastmath=True)
def unit(image: np.ndarray, out: np.ndarray) -> None:
    """out (M,) float32: the flat image (M,) with zero mean and unit length (sums in
    float64; :func:`~ogad_core.issues.registration.standardise`)."""
    m = image.size
    total = 0.0
    for k in range(m):
        total += image.flat[k]
    mean = total / m
    total2 = 0.0
    for k in range(m):
        out[k] = image.flat[k] - mean
        total2 += np.float64(out[k]) * np.float64(out[k])
    scale = np.float32(1.0 / max(np.sqrt(total2), 1e-6))
    for k in range(m):
        out[k] *= scale


@njit(cache=True, nogil=True, fastmath=True)
def coarse_loop(
    a: np.ndarray,
    b: np.ndarray,
    corners: np.ndarray,
    weights: np.ndarray,
    columns: np.ndarray,
    shifts: np.ndarray,
    score: np.ndarray,
    best: np.ndarray,
) -> None:
    """:func:`~ogad_core.issues.registration.coarse`, a pair at a time: a and b (P, M) flat
    r x r images, standardised here (:func:`unit`); b warped by each grid warp (``corners``,
    ``weights``: (G * M, 4) bilinear corners and weights of each warp's pixels), correlated
    with a rolled by every (dy, dx) of ``shifts`` (S,): a's rows rolled by dx and wrapped
    round by ``pad`` rows above and below (``columns``: (S, (r + 2 pad) * r) pixels of a)
    hold every dy roll as one contiguous window, so each correlation is one dot product of M.
    A b equal to the previous pair's keeps its warps (pairs ordered by b share them).
    Writes the best NCC (P,) ``score`` and its (g, dy, dx) flat index (P,) ``best`` (the
    first best, as argmax)."""
    p, m = a.shape
    n_warps, ns, span = corners.shape[0] // m, len(shifts), columns.shape[1]
    r = int(np.sqrt(m) + 0.5)
    pad = (span // r - r) // 2
    rolled = np.empty((ns, span), dtype=np.float32)
    warped = np.empty((n_warps, m), dtype=np.float32)
    inverses = np.empty(n_warps, dtype=np.float32)
    image, source = np.empty(m, dtype=np.float32), np.empty(m, dtype=np.float32)
    for i in range(p):
        unit(a[i], image)
        if i == 0 or not same_row(b, i):
            unit(b[i], source)
            for g in range(n_warps):
                inverses[g] = warp_grid(source, corners, weights, g, warped[g])
        for ix in range(ns):
            for q in range(span):
                rolled[ix, q] = image[columns[ix, q]]
        top, arg = np.float32(-np.inf), 0
        for g in range(n_warps):
            inverse = inverses[g]
            for iy in range(ns):
                start = (pad - shifts[iy]) * r
                for ix in range(ns):
                    window = rolled[ix, start : start + m]
                    acc = np.float32(0)
                    for k in range(m):
                        acc += warped[g, k] * window[k]
                    if acc * inverse > top:
                        top, arg = acc * inverse, (g * ns + iy) * ns + ix
        score[i], best[i] = top, arg


@njit(cache=True, nogil=True)
def same_row(b: np.ndarray, i: int) -> bool:
    """Row i of (P, M) ``b`` equals row i - 1 (i >= 1)."""
    for k in range(b.shape[1]):
        if b[i, k] != b[i - 1, k]:
            return False
    return True


@njit(cache=True, nogil=True, fastmath=True)
def warp_grid(
    source: np.ndarray, corners: np.ndarray, weights: np.ndarray, g: int, warped: np.ndarray
) -> np.float32:
    """warped (M,) float32: the flat image ``source`` (M,) under grid warp g (bilinear,
    :func:`coarse_loop`'s ``corners`` and ``weights``); returns the inverse norm of its
    centred values."""
    m = len(source)
    total = total2 = np.float32(0)
    for k in range(m):
        q = g * m + k
        v = weights[q, 0] * source[corners[q, 0]] + weights[q, 1] * source[corners[q, 1]]
        v += weights[q, 2] * source[corners[q, 2]] + weights[q, 3] * source[corners[q, 3]]
        warped[k] = v
        total += v
        total2 += v * v
    norm2 = np.float64(total2) - np.float64(total) * np.float64(total) / m
    return np.float32(1.0 / np.sqrt(max(norm2, 1e-12)))


@njit(cache=True, nogil=True)
def gradient_loop(images: np.ndarray, channels: np.ndarray) -> None:
    """channels (P, 3, r, r) float32: images (P, r, r) and their x and y gradients as
    :func:`numpy.gradient` computes them (central differences / 2 inside, one-sided at the
    edges) in float32, bit for bit."""
    p, r = images.shape[0], images.shape[1]
    two = np.float32(2)
    for i in range(p):
        img = images[i]
        for y in range(r):
            for x in range(r):
                channels[i, 0, y, x] = img[y, x]
                if x == 0:
                    gx = img[y, 1] - img[y, 0]
                elif x == r - 1:
                    gx = img[y, r - 1] - img[y, r - 2]
                else:
                    gx = (img[y, x + 1] - img[y, x - 1]) / two
                if y == 0:
                    gy = img[1, x] - img[0, x]
                elif y == r - 1:
                    gy = img[r - 1, x] - img[r - 2, x]
                else:
                    gy = (img[y + 1, x] - img[y - 1, x]) / two
                channels[i, 1, y, x] = gx
                channels[i, 2, y, x] = gy


@njit(cache=True, nogil=True)
def warp_loop(images: np.ndarray, theta: np.ndarray, out: np.ndarray) -> None:
    """out[p, k, y * r + x] of images (P, C, r, r) [p, k] at the (x, y) theta (P, 4) maps
    output pixel (x, y) to (:func:`~ogad_core.issues.registration.warp`)."""
    p, ch, r = images.shape[0], images.shape[1], images.shape[2]
    centre = np.float32((r - 1) / 2)
    top = np.float32(r - 1.0001)
    zero = np.float32(0)
    for i in range(p):
        a, s, tx, ty = theta[i, 0], theta[i, 1], theta[i, 2], theta[i, 3]
        for yy in range(r):
            v = np.float32(yy) - centre
            for xx in range(r):
                u = np.float32(xx) - centre
                x = min(max(a * u - s * v + tx + centre, zero), top)
                y = min(max(s * u + a * v + ty + centre, zero), top)
                x0, y0 = int(x), int(y)  # floor: both are >= 0
                fx, fy = x - np.float32(x0), y - np.float32(y0)
                for k in range(ch):
                    v00, v01 = images[i, k, y0, x0], images[i, k, y0, x0 + 1]
                    v10, v11 = images[i, k, y0 + 1, x0], images[i, k, y0 + 1, x0 + 1]
                    top_row = v00 + fx * (v01 - v00)
                    out[i, k, yy * r + xx] = top_row + fy * (v10 + fx * (v11 - v10) - top_row)


@njit(cache=True, nogil=True, fastmath=True)
def sample(img: np.ndarray, x: np.float32, y: np.float32) -> np.float32:
    """The bilinear sample of an (r, r) image at float32 (x, y) already clamped to
    [0, r - 1.0001] (as :func:`warp_loop`)."""
    x0, y0 = int(x), int(y)  # floor: both are >= 0
    fx, fy = x - np.float32(x0), y - np.float32(y0)
    v00, v01 = img[y0, x0], img[y0, x0 + 1]
    v10, v11 = img[y0 + 1, x0], img[y0 + 1, x0 + 1]
    top_row = v00 + fx * (v01 - v00)
    return top_row + fy * (v10 + fx * (v11 - v10) - top_row)


@njit(cache=True, nogil=True, fastmath=True)
def source(theta: np.ndarray, u: np.float32, v: np.float32, r: int) -> tuple:
    """The clamped source point (x, y) of centred output pixel (u, v) under theta (a, s, tx,
    ty)."""
    ca, sa = np.float32(theta[0]), np.float32(theta[1])
    centre, top, zero = np.float32((r - 1) / 2), np.float32(r - 1.0001), np.float32(0)
    x = min(max(ca * u - sa * v + np.float32(theta[2]) + centre, zero), top)
    y = min(max(sa * u + ca * v + np.float32(theta[3]) + centre, zero), top)
    return x, y


@njit(cache=True, nogil=True, fastmath=True)
def sample3(
    gx: np.ndarray, gy: np.ndarray, image: np.ndarray, x: np.float32, y: np.float32
) -> tuple:
    """The float64 samples of three (r, r) images (a step's x, y gradients and image) at
    (x, y) with one set of bilinear weights (as :func:`sample`'s float32 arithmetic)."""
    x0, y0 = int(x), int(y)  # floor: both are >= 0
    fx, fy = x - np.float32(x0), y - np.float32(y0)
    top = gx[y0, x0] + fx * (gx[y0, x0 + 1] - gx[y0, x0])
    low = gx[y0 + 1, x0] + fx * (gx[y0 + 1, x0 + 1] - gx[y0 + 1, x0])
    wx = np.float64(top + fy * (low - top))
    top = gy[y0, x0] + fx * (gy[y0, x0 + 1] - gy[y0, x0])
    low = gy[y0 + 1, x0] + fx * (gy[y0 + 1, x0 + 1] - gy[y0 + 1, x0])
    wy = np.float64(top + fy * (low - top))
    top = image[y0, x0] + fx * (image[y0, x0 + 1] - image[y0, x0])
    low = image[y0 + 1, x0] + fx * (image[y0 + 1, x0 + 1] - image[y0 + 1, x0])
    return wx, wy, np.float64(top + fy * (low - top))


@njit(cache=True, nogil=True, fastmath=True)
def ncc_at(image: np.ndarray, target: np.ndarray, theta: np.ndarray) -> float:
    """The NCC (zero mean, as :func:`~ogad_core.issues.registration.standardise`) of an
    (r, r) target and an (r, r) image warped by theta (4,), its sums in float64."""
    r = image.shape[0]
    m = r * r
    centre = np.float32((r - 1) / 2)
    sx = sy = sxx = syy = sxy = 0.0
    for yy in range(r):
        for xx in range(r):
            x, y = source(theta, np.float32(xx) - centre, np.float32(yy) - centre, r)
            w, t = np.float64(sample(image, x, y)), np.float64(target[yy, xx])
            sx, sy, sxx, syy, sxy = sx + t, sy + w, sxx + t * t, syy + w * w, sxy + t * w
    vx = np.sqrt(max(sxx - sx * sx / m, 0.0))
    vy = np.sqrt(max(syy - sy * sy / m, 0.0))
    return (sxy - sx * sy / m) / (max(vx, 1e-6) * max(vy, 1e-6))


@njit(cache=True, nogil=True, fastmath=True)
def step_at(channels: np.ndarray, target: np.ndarray, theta: np.ndarray) -> None:
    """The Gauss-Newton step of one pair: the image and its x, y gradients (channels (3, r,
    r)) warped by theta (4,) with one set of bilinear weights, the Jacobian in (a, s, tx, ty),
    gain and offset (columns wx u + wy v, wy u - wx v, wx, wy, image, 1 at centred pixel
    (u, v)), its normal equations (ridge 1e-6) accumulated in float64 scalars, solved; theta
    moves by the solution over the gain."""
    r = channels.shape[1]
    centre = np.float32((r - 1) / 2)
    image, gx, gy = channels[0], channels[1], channels[2]
    h00 = h10 = h11 = h20 = h21 = h22 = h30 = h31 = h32 = h33 = 0.0
    h40 = h41 = h42 = h43 = h44 = h50 = h51 = h52 = h53 = h54 = 0.0
    b0 = b1 = b2 = b3 = b4 = b5 = 0.0
    for yy in range(r):
        for xx in range(r):
            u, v = np.float32(xx) - centre, np.float32(yy) - centre
            x, y = source(theta, u, v, r)
            wx, wy, c4 = sample3(gx, gy, image, x, y)
            c0, c1, c2, c3 = wx * u + wy * v, wy * u - wx * v, wx, wy
            t = np.float64(target[yy, xx])
            h00 += c0 * c0
            h10 += c1 * c0
            h11 += c1 * c1
            h20 += c2 * c0
            h21 += c2 * c1
            h22 += c2 * c2
            h30 += c3 * c0
            h31 += c3 * c1
            h32 += c3 * c2
            h33 += c3 * c3
            h40 += c4 * c0
            h41 += c4 * c1
            h42 += c4 * c2
            h43 += c4 * c3
            h44 += c4 * c4
            h50 += c0
            h51 += c1
            h52 += c2
            h53 += c3
            h54 += c4
            b0 += c0 * t
            b1 += c1 * t
            b2 += c2 * t
            b3 += c3 * t
            b4 += c4 * t
            b5 += t
    ridge = 1e-6
    normal = np.array(
        [
            [h00 + ridge, h10, h20, h30, h40, h50],
            [h10, h11 + ridge, h21, h31, h41, h51],
            [h20, h21, h22 + ridge, h32, h42, h52],
            [h30, h31, h32, h33 + ridge, h43, h53],
            [h40, h41, h42, h43, h44 + ridge, h54],
            [h50, h51, h52, h53, h54, r * r + ridge],
        ]
    )
    sol = np.linalg.solve(normal, np.array([b0, b1, b2, b3, b4, b5]))
    gain = sol[4] if abs(sol[4]) > 1e-6 else 1e-6
    for j in range(4):
        theta[j] += sol[j] / gain


@njit(cache=True, nogil=True)
def refine_loop(
    channels: np.ndarray,
    target: np.ndarray,
    theta: np.ndarray,
    steps: int,
    gates: np.ndarray,
    score: np.ndarray,
) -> int:
    """:func:`~ogad_core.issues.registration.refine`, a pair at a time: each step warps b and,
    at a gated step, stops the pair when the NCC is below the gate (:func:`ncc_at`); else it
    takes a Gauss-Newton step (:func:`step_at`). Returns the pixels sampled (channels x
    pixels)."""
    m = channels.shape[2] * channels.shape[3]
    sampled = 0
    for i in range(channels.shape[0]):
        for step in range(steps + 1):
            if not np.abs(theta[i]).max() < THETA_LIMIT:  # diverged (or NaN): no copy
                score[i] = -1.0
                break
            if step == steps or step < len(gates):
                score[i] = ncc_at(channels[i, 0], target[i], theta[i])
                sampled += m
                if step == steps or score[i] < gates[step]:
                    break
                sampled -= m  # the image is sampled again beside its gradients
            step_at(channels[i], target[i], theta[i])
            sampled += 3 * m
    return sampled


@njit(cache=True, nogil=True, fastmath=True)
def blur_ncc_loop(
    target: np.ndarray, aligned: np.ndarray, sigmas: np.ndarray, best: np.ndarray
) -> None:
    """best (P,) float32: the largest NCC of each flat target (P, M) (zero mean, unit length)
    and its aligned image (P, r, r) blurred by a Gaussian of each of its ``sigmas`` (P, S), then
    smoothed by a [1, 2, 1] / 4 tent: one kernel of both (truncated at 3 sigma) along the rows,
    then the columns, edges repeated (:func:`~ogad_core.issues.registration.matched_blur`)."""
    p, r = aligned.shape[0], aligned.shape[1]
    half = 1 + int(np.ceil(3 * sigmas.max())) if sigmas.size else 1
    gauss = np.empty(2 * half + 1, dtype=np.float64)
    kernel = np.empty(2 * half + 1, dtype=np.float32)
    rows = np.empty((r, r), dtype=np.float32)
    for i in range(p):
        best[i] = -1.0
        for s in range(sigmas.shape[1]):
            smooth_kernel(sigmas[i, s], gauss, kernel)
            convolve_rows(aligned[i], kernel, rows)
            ncc = columns_ncc(rows, kernel, target[i])
            if ncc > best[i]:
                best[i] = ncc


@njit(cache=True, nogil=True, fastmath=True)
def smooth_kernel(sigma: float, gauss: np.ndarray, kernel: np.ndarray) -> None:
    """kernel (2 h + 1,) float32: a Gaussian of ``sigma`` (truncated at 3 sigma, rounded, as
    scipy's ``gaussian_filter1d(truncate=3)``; unit sum; 3 sigma + 1.5 <= h) convolved with the
    [1, 2, 1] / 4 tent; ``gauss`` the same length, scratch."""
    half = len(kernel) // 2
    total = 0.0
    for k in range(-half, half + 1):
        g = np.exp(-0.5 * (k / sigma) ** 2) if abs(k) <= int(3 * sigma + 0.5) else 0.0
        gauss[k + half] = g
        total += g
    for k in range(len(kernel)):
        left = gauss[k - 1] if k > 0 else 0.0
        right = gauss[k + 1] if k + 1 < len(kernel) else 0.0
        kernel[k] = np.float32((0.25 * left + 0.5 * gauss[k] + 0.25 * right) / total)


@njit(cache=True, nogil=True, fastmath=True)
def convolve_rows(image: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> None:
    """out (r, r): each row of the (r, r) image convolved with the symmetric kernel, edges
    repeated."""
    r, half = image.shape[0], len(kernel) // 2
    for y in range(r):
        for x in range(r):
            acc = np.float32(0)
            for k in range(-half, half + 1):
                acc += kernel[k + half] * image[y, min(max(x + k, 0), r - 1)]
            out[y, x] = acc


@njit(cache=True, nogil=True, fastmath=True)
def columns_ncc(rows: np.ndarray, kernel: np.ndarray, target: np.ndarray) -> float:
    """The NCC of the flat target (M,) (zero mean, unit length) and the (r, r) image ``rows``
    convolved along its columns with the symmetric kernel, edges repeated (sums in float64)."""
    r, half = rows.shape[0], len(kernel) // 2
    total = total2 = dot = 0.0
    for y in range(r):
        for x in range(r):
            acc = np.float32(0)
            for k in range(-half, half + 1):
                acc += kernel[k + half] * rows[min(max(y + k, 0), r - 1), x]
            v = np.float64(acc)
            total += v
            total2 += v * v
            dot += v * np.float64(target[y * r + x])
    norm2 = total2 - total * total / (r * r)
    return dot / max(np.sqrt(max(norm2, 0.0)), 1e-6)

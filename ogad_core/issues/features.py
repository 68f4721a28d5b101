"""The model's penultimate features ``h``, recovered from the run's last-layer gradients.

A last-layer gradient row is ``[(p - onehot(y)) ⊗ h, p - onehot(y)]`` (weight then bias, the
layout of :mod:`ogad_core.engine.gradients`), so ``h = G_W[c] / G_b[c]`` for any class ``c``
with ``G_b[c] != 0``; the class with the largest ``|G_b[c]|`` is the best conditioned. No model
and no torch are needed: ``features.npy`` is written through the resumable
:class:`~ogad_core.run.store.GradientStore` and reused while the gradients are unchanged.
Runs whose gradients are projected, or taken w.r.t. other parameters, have no features here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ogad_core._internal import log, row_chunks
from ogad_core.issues.properties import REGISTRATION_PX, SIGNATURE_PX
from ogad_core.options import fingerprint
from ogad_core.run.manifest import Manifest
from ogad_core.run.rundir import RunDir
from ogad_core.run.store import GradientStore

#: rows recovered per chunk (bounded memory on a memory-mapped gradient matrix)
CHUNK_ROWS = 8192


def feature_dim(manifest: Manifest) -> int | None:
    """H when the run's stored gradients are unprojected last-layer ones with a bias, else None."""
    dims = manifest.dims or {}
    n_classes = len(manifest.label_names or [])
    stored = int(dims.get("stored") or 0)
    if manifest.params != "last" or dims.get("proj_dim") or n_classes < 2 or stored <= n_classes:
        return None
    if (stored - n_classes) % n_classes:
        return None
    return (stored - n_classes) // n_classes


def features_from_gradients(grads: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, H) float32 features from (B, C * H + C) last-layer gradients.

    A row whose bias gradient is all zero (a sample fitted to float precision) gives zeros."""
    g = np.asarray(grads, dtype=np.float64)
    n, d = g.shape
    h_dim = (d - n_classes) // n_classes
    dz = g[:, n_classes * h_dim :]
    best = np.abs(dz).argmax(axis=1)
    rows = np.arange(n)
    denom = dz[rows, best]
    weights = g[:, : n_classes * h_dim].reshape(n, n_classes, h_dim)[rows, best]
    safe = np.where(denom == 0, 1.0, denom)
    out = weights / safe[:, None]
    out[denom == 0] = 0.0
    return out.astype(np.float32)


def ensure_features(rd: RunDir, manifest: Manifest) -> np.ndarray | None:
    """(N, H) features (memory-mapped), recovered once into features.npy; None when the run's
    gradients do not hold them (see :func:`feature_dim`)."""
    h_dim = feature_dim(manifest)
    if h_dim is None:
        return None
    n, n_classes = manifest.n_samples, len(manifest.label_names)
    fp = fingerprint("features", manifest.step_fingerprint("gradients"))
    store = GradientStore(rd.features_path, n_rows=n, n_cols=h_dim, fingerprint=fp)
    if not store.complete:
        log.info(f"issues: recovering the model's {h_dim}-d features from the gradients")
        grads = np.load(rd.gradients_path, mmap_mode="r")
        for rows in _chunks(store.pending()):
            store.write(rows, features_from_gradients(grads[rows], n_classes))
    return store.array()


def _chunks(rows: np.ndarray) -> list[np.ndarray]:
    return [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)]


#: orientation bins of the signature's edge histogram (unsigned, 0 to 180 degrees)
ORIENTATION_BINS = 8
#: a pixel is ink at this share of the way from the image's darkest to its brightest value
INK_LEVEL = 0.3
#: the object's size (px of the 32 x 32 registration images) is z-scored on its standard
#: deviation or this, whichever is larger: a size-normalised dataset spreads about 1 px
#: (mnist5k: 23-24 +- 1), where an atypical clean digit 6 px smaller would read as far as a
#: typeset one (measured: with the floor no kind lowered on the three mixes; without it clean
#: digits took the places of letters, shapes and 8 x 8 digits)
OBJECT_SCALE = 2.0
#: the object box of the input view's size bonus: ink at a tenth of the range (mnist boxes every
#: pixel with ink: at a tenth all 5,000 mnist5k digits read 22-24 px, at INK_LEVEL a faint
#: stroke left out made a clean 7 read 17 px, as small as a typeset digit)
BONUS_INK_LEVEL = 0.1
#: the size bonus counts only the px beyond this below the median, or beyond BONUS_SPREAD
#: robust standard deviations (1.4826 x the median absolute deviation) of the data's sizes
#: when that is more (objects of many sizes: the small end of the bulk is not an outlier;
#: mnist5k's sizes have a MAD of 0, 1,000,000 elastically deformed digits 1 px: 23% of them
#: read a bonus without it and the planted outliers in the top K fell 0.788 -> 0.607), on the
#: size's standard deviation or BONUS_SCALE px (the larger)
BONUS_DEAD_ZONE, BONUS_SPREAD, BONUS_SCALE = 1.0, 3.0, 3.0


def signature_statistics(
    signatures: np.ndarray,
    registration: np.ndarray | None = None,
    *,
    flat: np.ndarray | None = None,
    size: np.ndarray | None = None,
) -> np.ndarray:
    """(N, 12) float32 statistics of (N, 256) 16 x 16 grayscale signatures (N, 14 with the (N,
    32, 32) ``registration`` images: their :func:`flat_share` and :func:`smaller_object` as
    well), each column scaled
    to zero median and unit standard deviation over the rows: an input-statistics space where an
    image made another way (drawn, typeset, upscaled from another resolution, a photo) differs
    from the data even when the model takes it for a class member.

    Per image, rescaled to [0, 1]: its framing (centre of mass and spread per axis, the first
    and last row and column with ink), the shape of its edge orientation histogram
    (:func:`_orientation_spectrum`: how many directions the strokes take, not which: slant is
    the data's own variation) and, with registration
    images, its effective resolution (:func:`flat_share`: upscaled 8 x 8 digits are digits to
    the model and in framing, but flat in 3-4 px blocks) and how much smaller its object is
    than the data's (:func:`smaller_object`: typeset digits, 14-20 px against mnist's
    size-normalised 23-24, are digits to the model). No intensity
    distribution, edge strength or sharpness: those are what damage changes (noise, blur,
    exposure: the ``corrupt`` type's; measured, an intensity histogram here sent blurred
    digits to the outlier queue). A NaN signature (undecodable) counts as blank. ``flat``: the
    (N,) flat share of the registration images where the caller has it
    (:meth:`~ogad_core.issues.base.IssueContext.flat_share`), in their stead; ``size``: their
    (N,) :func:`object_size` likewise (:meth:`~ogad_core.issues.base.IssueContext.object_sizes`)."""
    out = np.concatenate(
        [
            image_statistics(signatures[rows])
            for rows in row_chunks(len(signatures), STATISTICS_ROW_BYTES)
        ]
        or [np.empty((0, 8 + ORIENTATION_BINS // 2))]
    )
    size_z = None
    if flat is None and registration is not None and len(registration) == len(out):
        flat = flat_share(registration)
    if flat is not None and len(flat) == len(out):
        out = np.column_stack([out, flat])
    if registration is not None and len(registration) == len(out):
        size_z = smaller_object(object_size(registration) if size is None else size)
    scale = out.std(axis=0)
    z = (out - np.median(out, axis=0)) / np.where(scale > 1e-9, scale, 1.0)
    return (z if size_z is None else np.column_stack([z, size_z])).astype(np.float32)


def object_size(registration: np.ndarray, level: float = INK_LEVEL) -> np.ndarray:
    """(N,) the larger side (px) of the box around each (N, side, side) uint8 grayscale image's
    ink: pixels at least ``level`` of its range (darkest to brightest) from its median (its
    background; a negative's too)."""
    return object_sizes(registration, (level,))[:, 0]


def object_sizes(registration: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """(N, L) :func:`object_size` of (N, side, side) uint8 images at each of the L ``levels``,
    in one compiled pass an image for every level (the median from a 256-bin histogram), chunk
    by chunk (memory-mapped images)."""
    from ogad_core.issues.property_loops import object_sizes_loop

    out = np.zeros((len(registration), len(levels)))
    wanted = np.asarray(levels, dtype=np.float64)
    for rows, chunk in image_chunks(registration):
        if chunk.dtype != np.uint8:
            raise TypeError(f"registration images are uint8, not {chunk.dtype}")
        object_sizes_loop(chunk, wanted, out[rows])
    return out


def small_object_bonus(
    registration: np.ndarray | None, size: np.ndarray | None = None
) -> np.ndarray:
    """(N,) how much smaller than the data's each image's object is (its box at
    BONUS_INK_LEVEL), in px beyond BONUS_DEAD_ZONE below the median (or beyond the sizes' own
    spread, BONUS_SPREAD robust standard deviations, when wider), over the size's standard
    deviation or BONUS_SCALE px; 0 at or above, and 0 for all where the median object reaches
    within BONUS_DEAD_ZONE + 1 px of the frame's side (photos: the "object" is the whole
    frame; on crops of sklearn's sample photos and bench_rehearsal's synthetic photos a
    median of 32 of 32 px, and 4-5% of them would read a bonus of up to 7): added to the
    input view's z, where a column of the statistics' kNN is diluted among the others (typeset
    digits, glyphs of another script: the model takes them for digits, only their size tells
    them). ``size``: the (N,) object sizes at BONUS_INK_LEVEL where the caller has them."""
    if size is None:
        if registration is None:
            raise ValueError("small_object_bonus needs the registration images or their sizes")
        size = object_size(registration, level=BONUS_INK_LEVEL)
    if not len(size):
        return size
    median = float(np.median(size))
    side = REGISTRATION_PX if registration is None else registration.shape[-1]
    if median > side - 1 - BONUS_DEAD_ZONE:  # objects fill the frame (photos): none is smaller
        return np.zeros(len(size))
    spread = BONUS_SPREAD * 1.4826 * float(np.median(np.abs(size - median)))
    scale = max(float(size.std()), BONUS_SCALE)
    return np.maximum((median - max(BONUS_DEAD_ZONE, spread) - size) / scale, 0.0)


def smaller_object(size: np.ndarray) -> np.ndarray:
    """(N,) z-score of each (N,) object size below the data's median, on its standard
    deviation or OBJECT_SCALE px (the larger); 0 at or above it: only a smaller object than the
    data's (typeset digits, glyphs of another script, drawn shapes), as damage that fills the
    frame (noise) reads large."""
    scale = max(float(size.std()), OBJECT_SCALE) if len(size) else OBJECT_SCALE
    return np.minimum((size - np.median(size)) / scale, 0.0) if len(size) else size


#: bytes a row of :func:`image_statistics` holds at once (about 10 float64 copies of a 16 x 16
#: signature): row chunks of about CHUNK_BYTES (the whole (N, 256) at once held 16 KB a row)
STATISTICS_ROW_BYTES = 10 * 8 * SIGNATURE_PX * SIGNATURE_PX


def image_statistics(signatures: np.ndarray) -> np.ndarray:
    """(N, 8 + ORIENTATION_BINS // 2) float64 framing and edge-orientation spectrum of (N, 256)
    signatures (unscaled; a NaN signature counts as blank): each row on its own, so any row
    chunks give the same values."""
    side = SIGNATURE_PX
    X = np.nan_to_num(np.asarray(signatures, dtype=np.float64)).reshape(-1, side, side)
    low, high = X.min(axis=(1, 2), keepdims=True), X.max(axis=(1, 2), keepdims=True)
    Y = (X - low) / np.maximum(high - low, 1e-6)
    return np.column_stack([_framing(Y), _orientation_spectrum(_orientations(Y))])


def _framing(Y: np.ndarray) -> np.ndarray:
    """(N, 8): centre of mass and spread per axis, first and last ink row and column."""
    pos = np.arange(Y.shape[1]) + 0.5
    mass = np.maximum(Y.sum(axis=(1, 2)), 1e-6)
    cols = []
    for profile in (Y.sum(axis=2) / mass[:, None], Y.sum(axis=1) / mass[:, None]):
        centre = (profile * pos).sum(axis=1)
        spread = np.sqrt((profile * (pos - centre[:, None]) ** 2).sum(axis=1))
        cols += [centre, spread]
    ink = (Y > INK_LEVEL).astype(np.int8)
    for any_ink in (ink.max(axis=2), ink.max(axis=1)):
        cols += [any_ink.argmax(axis=1), len(pos) - 1 - any_ink[:, ::-1].argmax(axis=1)]
    return np.column_stack(cols).astype(np.float64)


def _orientation_spectrum(histogram: np.ndarray) -> np.ndarray:
    """(N, ORIENTATION_BINS // 2) magnitudes of the circular Fourier coefficients 1 to B / 2 of
    (N, B) orientation histograms: their shape -- one dominant direction, two at right angles
    (a box), spread evenly (a photo) -- whatever the direction (rotation-invariant HOG, Liu et
    al. 2014). A rotation shifts the histogram around its circle and leaves these unchanged:
    handwriting leans, and the bins themselves set the slanted strokes of clean digits (ones
    leaning 20 degrees: two adjacent bins of the per-column scaled histogram) as far as a
    letter; the coefficient 0 is the histogram's sum (1)."""
    return np.abs(np.fft.rfft(histogram, axis=1))[:, 1:]


def _orientations(Y: np.ndarray) -> np.ndarray:
    """(N, ORIENTATION_BINS): the edge orientation histogram (magnitude-weighted shares)."""
    gy, gx = np.gradient(Y, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((angle / np.pi * ORIENTATION_BINS).astype(int), ORIENTATION_BINS - 1)
    total = np.maximum(magnitude.sum(axis=(1, 2)), 1e-6)
    return np.column_stack(
        [(magnitude * (bins == b)).sum(axis=(1, 2)) / total for b in range(ORIENTATION_BINS)]
    )


#: a pixel is mid-grey strictly between these shares of its image's range (not background, not
#: a saturated stroke core: there a drawn digit is flat too)
MID_GREY = (0.1, 0.9)
#: neighbours closer than this share of the image's range count as equal (1.5 grey levels of
#: a full-range image)
EQUAL_LEVEL = 1.5 / 255


def flat_share(registration: np.ndarray) -> np.ndarray:
    """(N,) share of the neighbouring pixel pairs (along rows and columns) of (N, side, side)
    grayscale images that touch a mid-grey pixel (:data:`MID_GREY`) and are equal: the
    effective resolution of the input. An image upscaled by pixel blocks from a smaller one
    (nearest neighbour) is flat inside each block, at every grey level; anti-aliased or
    blurred strokes change from pixel to pixel (measured: clean and blurred digits 0.02-0.03,
    upscaled 8 x 8 digits 0.29-0.37). Each image rescaled to [0, 1] from its darkest to its
    brightest pixel; read chunk by chunk (memory-mapped images), one compiled pass an image."""
    from ogad_core.issues.property_loops import flat_share_loop

    out = np.zeros(len(registration))
    for rows, chunk in image_chunks(registration):
        flat_share_loop(chunk, MID_GREY[0], MID_GREY[1], EQUAL_LEVEL, out[rows])
    return out


def image_chunks(images: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, (m, side, side) contiguous copy of them) of (N, side, side) ``images``,
    CHUNK_ROWS at a time (a memory-map read chunk by chunk)."""
    for start in range(0, len(images), CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, len(images)))
        yield rows, np.ascontiguousarray(images[rows])

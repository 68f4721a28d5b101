"""The shape of a damaged image with its damage taken out: the corrupt / outlier primary rule's
second look (:func:`ogad_core.issues.outlier.resembles_its_label`).

A sample flagged both ``corrupt`` and ``outlier`` is the corrupt type's first when its shape
resembles the class it is filed under. Stripes over a digit or a block covering a quarter of it
dominate its standardised pixels, so the plain vote calls the damaged digit foreign (measured
on the held-out mix's kept runs: 9 of 21 striped and 13 of 21 occluded digits). Here the
damage the corrupt type found is taken out before the vote:

- ``periodic`` (lines at a 2-4 px period): a 3-pixel median across the lines (the image's
  row or column direction whose spectrum peaks at those periods), on the sample and on the
  reference images alike: a 1-pixel line is removed, a wider stroke kept;
- ``occluded`` (a flat square of a non-background value): the flat pixels, grown by 2 px, are
  left out of the comparison (a masked distance, each side standardised over what is left).

The vote is then the same: the label is the strict plurality among the k nearest reference
images (16 x 16, from the run's 32 x 32 registration images). An image without such damage is
not looked at again; an image made another way (a filled shape is flat too) still resembles
no class once its flat part is left out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ogad_core.issues.properties import FLAT_TOL, SCAN_PERIOD

#: corrupt properties whose damage is taken out before the second vote
UNDAMAGED_PARTS = ("periodic", "occluded")
#: reference images compared in the second vote (a seeded subsample above it: a cheap check)
DAMAGE_REFERENCE = 20_000
#: pixels a flat patch's mask grows by (the patch's rim and the resampling's blur)
MASK_GROW = 2


def normalised(images: np.ndarray) -> np.ndarray:
    """(n, side, side) float32 in [0, 1] of (n, side, side) uint8 grayscale images, each
    rescaled from its own darkest to its brightest value."""
    X = np.asarray(images, dtype=np.float32)
    low, high = X.min(axis=(1, 2), keepdims=True), X.max(axis=(1, 2), keepdims=True)
    return (X - low) / np.maximum(high - low, 1.0)


def line_axis(image: np.ndarray) -> int:
    """The axis (0: rows, 1: columns) along which the (side, side) image's profile has the
    stronger spectral peak at a period of 2 to SCAN_PERIOD px (the lines' direction)."""
    side = image.shape[0]
    low = -(-side // SCAN_PERIOD)
    centred = image - image.mean()
    peaks = [np.abs(np.fft.rfft(centred.sum(axis=1 - a)))[low:].max() for a in (0, 1)]
    return int(np.argmax(peaks))


def without_lines(images: np.ndarray, axis: int) -> np.ndarray:
    """(n, side, side) images with a 3-pixel median across lines along ``axis`` (0: lines are
    rows): a 1-pixel line at a 2-4 px period goes, a wider stroke stays."""
    size = (1, 3, 1) if axis == 0 else (1, 1, 3)
    return ndimage.median_filter(images, size=size, mode="nearest")


def flat_mask(image: np.ndarray) -> np.ndarray:
    """(side, side) bool: the (side, side) image's flat pixels (3 x 3 span at most FLAT_TOL) of
    a value other than its background (the median), grown by MASK_GROW px."""
    span = ndimage.maximum_filter(image, 3) - ndimage.minimum_filter(image, 3)
    flat = (span <= FLAT_TOL) & (np.abs(image - np.median(image)) > FLAT_TOL)
    return ndimage.binary_dilation(flat, iterations=MASK_GROW) if flat.any() else flat


def halved(images: np.ndarray) -> np.ndarray:
    """(n, (side / 2) ** 2) means of 2 x 2 pixels of (n, side, side) images (side even)."""
    n, side = images.shape[0], images.shape[1]
    return images.reshape(n, side // 2, 2, side // 2, 2).mean(axis=(2, 4)).reshape(n, -1)


def masked_neighbours(query: np.ndarray, keep: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    """(k,) indices of the k nearest of (R, d) ``ref`` rows to the (d,) ``query`` over the
    (d,) bool ``keep`` pixels, each row standardised over those pixels."""
    w = keep.astype(np.float32)
    count = max(float(w.sum()), 1.0)

    def standard(V: np.ndarray) -> np.ndarray:
        centred = (V - (V * w).sum(axis=-1, keepdims=True) / count) * w
        scale = np.sqrt((centred**2).sum(axis=-1, keepdims=True) / count)
        return centred / np.maximum(scale, 1e-3)

    dist = ((standard(ref) - standard(query[None])) ** 2).sum(axis=1)
    return np.argsort(dist, kind="stable")[:k]


def undamaged_votes(
    registration: np.ndarray,
    codes: np.ndarray,
    rows: np.ndarray,
    damage: dict[str, np.ndarray],
    reference: np.ndarray,
    k: int,
) -> np.ndarray:
    """(m,) bool for (m,) ``rows``: the label code (``codes``: (N,) ints) is the strict
    plurality among the k nearest ``reference`` rows once the row's damage
    (``damage``: part name -> (N,) bool, :data:`UNDAMAGED_PARTS`) is taken out; False for a
    row without such damage. ``registration``: (N, side, side) grayscale images."""
    periodic = damage.get("periodic", np.zeros(len(codes), dtype=bool))
    occluded = damage.get("occluded", np.zeros(len(codes), dtype=bool))
    out = np.zeros(len(rows), dtype=bool)
    todo = [j for j, i in enumerate(rows) if periodic[i] or occluded[i]]
    if not todo or len(reference) == 0:
        return out
    ref_images = normalised(registration[reference])
    cleaned: dict[int, np.ndarray] = {}  # the reference without lines, per axis
    for j in todo:
        i = int(rows[j])
        image, ref = normalised(registration[i : i + 1]), ref_images
        if periodic[i]:
            axis = line_axis(image[0])
            if axis not in cleaned:
                cleaned[axis] = without_lines(ref_images, axis)
            image, ref = without_lines(image, axis), cleaned[axis]
        keep = ~halved(flat_mask(image[0])[None].astype(np.float32))[0].astype(bool)
        if not occluded[i]:
            keep[:] = True
        found = codes[reference[masked_neighbours(halved(image)[0], keep, halved(ref), k)]]
        votes = np.bincount(found, minlength=int(codes.max()) + 1)
        own = votes[codes[i]]
        votes[codes[i]] = -1
        out[j] = own > votes.max()
    return out
